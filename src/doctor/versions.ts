/** Dotted version numbers: comparing them, and the `engines` ranges package.json uses. */

/** Numeric parts of "v20.10.1", "550.54.15" or "20.10"; missing parts read as 0. */
function parts(version: string): number[] {
  return version
    .replace(/^v/, '')
    .split(/[.+-]/)
    .slice(0, 3)
    .map((p) => Number.parseInt(p, 10) || 0);
}

/** <0, 0 or >0 as `a` is older than, the same as or newer than `b`. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function satisfiesComparator(version: string, comparator: string): boolean {
  const m = /^(>=|<=|>|<|=|\^|~)?\s*v?(\d+(?:\.\d+){0,2})(?:\.[xX*])*$/.exec(comparator);
  if (m === null) return false;
  const op = m[1] ?? '=';
  const base = m[2]!;
  const c = compareVersions(version, base);
  const [major = 0, minor = 0] = parts(base);
  switch (op) {
    case '>=':
      return c >= 0;
    case '>':
      return c > 0;
    case '<=':
      return c <= 0;
    case '<':
      return c < 0;
    case '^':
      return c >= 0 && compareVersions(version, `${major + 1}`) < 0;
    case '~':
      return c >= 0 && compareVersions(version, `${major}.${minor + 1}`) < 0;
    default: {
      // "20" or "20.10" means any 20.x or 20.10.x.
      const given = base.split('.').length;
      return parts(version).slice(0, given).join('.') === parts(base).slice(0, given).join('.');
    }
  }
}

/**
 * Whether `version` meets an `engines` range such as ">=20.10", "^20.10 || >=22" or
 * ">=18 <23". Enough of npm's range syntax for engines fields; an unreadable range is unmet.
 */
export function satisfiesRange(version: string, range: string): boolean {
  return range.split('||').some((alternative) => {
    const comparators = alternative
      .trim()
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .filter((c) => c !== '');
    return comparators.length > 0 && comparators.every((c) => satisfiesComparator(version, c));
  });
}
