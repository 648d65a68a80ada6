/** `bento-run schema`: the JSON Schema that editors and the validator use. */
import { EXIT_OK } from '../errors.js';
import { schemaText } from '../spec/schema.js';
import type { CommandDefinition } from './types.js';

export const schemaCommand: CommandDefinition = {
  summary: 'print the JSON Schema of bentofile.yaml',
  usage: `bento-run schema

Prints the JSON Schema that validates bentofile.yaml (the file editors use too).`,
  options: [],
  run: (_files, _opts, io) => {
    io.stdout(schemaText());
    return EXIT_OK;
  },
};
