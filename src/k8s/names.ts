/**
 * The name rules of the Kubernetes API, as predicates that say why a name fails, so that every
 * message can name the offending name and the rule. (k8s.io/apimachinery/pkg/util/validation.)
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Why `name` is not a DNS-1123 label (most object names), or null when it is one. */
export function dns1123LabelProblem(name: string): string | null {
  if (name === '') return 'it is empty';
  if (name.length > 63) return `it is ${name.length} characters long (at most 63)`;
  if (!DNS1123_LABEL.test(name)) {
    return "it must consist of lowercase letters, digits and '-', and start and end with a letter or digit";
  }
  return null;
}

/** Why `name` is not a DNS-1035 label (Service names: a DNS-1123 label that starts with a letter). */
export function dns1035LabelProblem(name: string): string | null {
  const problem = dns1123LabelProblem(name);
  if (problem !== null) return problem;
  return /^[a-z]/.test(name) ? null : 'a Service name must start with a letter (DNS-1035 label)';
}

/** Why `name` is not a DNS-1123 subdomain (PersistentVolumeClaim names, label key prefixes). */
export function dns1123SubdomainProblem(name: string): string | null {
  if (name === '') return 'it is empty';
  if (name.length > 253) return `it is ${name.length} characters long (at most 253)`;
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return "it must consist of lowercase letters, digits, '-' and '.', and start and end with a letter or digit";
  }
  return null;
}

/** Why `key` is not a label key (`[prefix/]name`), or null. */
export function labelKeyProblem(key: string): string | null {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? null : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== null) {
    const problem = dns1123SubdomainProblem(prefix);
    if (problem !== null) return `its prefix \`${prefix}\` is no DNS subdomain: ${problem}`;
  }
  if (name === '') return 'its name part is empty';
  if (name.length > 63) return `its name part is ${name.length} characters long (at most 63)`;
  if (!LABEL_NAME.test(name)) {
    return "its name part must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit";
  }
  return null;
}

/** Why `value` is not a label value (empty is allowed), or null. */
export function labelValueProblem(value: string): string | null {
  if (value === '') return null;
  if (value.length > 63) return `it is ${value.length} characters long (at most 63)`;
  if (!LABEL_NAME.test(value)) {
    return "it must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit";
  }
  return null;
}

/** A bento-run service name as a DNS label: `multi_gpu` -> `multi-gpu`. */
export function dnsNameOf(serviceName: string): string {
  return serviceName.toLowerCase().replaceAll('_', '-');
}
