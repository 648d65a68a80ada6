/**
 * `GET /openapi.json`: an OpenAPI 3.0 document of the Open Inference Protocol's REST routes as
 * this server answers them, with one set of model routes per served model whose request schema
 * names that model's inputs, datatypes and shapes, and an example body of the right shape.
 * Pure: built from the models' signatures (as the loaded sessions report them), nothing else.
 */
import type { ModelInfo } from '../runtime/types.js';
import { modelMetadata } from '../server/rest-codec.js';
import { elementCount, ORT_TO_PROTOCOL, type ProtocolDatatype } from '../tensor/datatypes.js';
import type { TensorSignature } from '../tensor/types.js';

type JsonObject = Record<string, unknown>;

export interface OpenApiOptions {
  /** The spec's name, shown in the title. */
  readonly name: string;
  /** bento-run's version. */
  readonly version: string;
}

const datatypeOf = (s: TensorSignature): ProtocolDatatype =>
  s.type === 'unknown' ? 'BYTES' : ORT_TO_PROTOCOL[s.type];

/** A dynamic dimension (-1) becomes 1: the smallest request of the right shape. */
export const exampleShape = (s: TensorSignature): number[] => s.shape.map((d) => (d < 0 ? 1 : d));

function exampleValue(datatype: ProtocolDatatype): boolean | string | number {
  if (datatype === 'BOOL') return false;
  if (datatype === 'BYTES') return 'a';
  return 0;
}

/** An infer request body for `model`: every input, dynamic dims 1, zeros (false, "a"). */
export function exampleRequest(model: Pick<ModelInfo, 'inputs'>) {
  return {
    inputs: model.inputs.map((s) => {
      const shape = exampleShape(s);
      const datatype = datatypeOf(s);
      return {
        name: s.name,
        shape,
        datatype,
        data: new Array<boolean | string | number>(elementCount(shape)).fill(
          exampleValue(datatype),
        ),
      };
    }),
  };
}

function elementSchema(datatype: ProtocolDatatype): JsonObject {
  if (datatype === 'BOOL') return { type: 'boolean' };
  if (datatype === 'BYTES') return { type: 'string' };
  if (datatype.startsWith('FP')) {
    return { type: 'number', description: 'NaN, Infinity and -Infinity as bare tokens' };
  }
  return { type: 'integer' };
}

const shapeText = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function inputSchema(s: TensorSignature): JsonObject {
  const datatype = datatypeOf(s);
  return {
    type: 'object',
    required: ['name', 'shape', 'datatype', 'data'],
    properties: {
      name: { type: 'string', enum: [s.name] },
      shape: {
        type: 'array',
        items: { type: 'integer', minimum: 0 },
        minItems: s.shape.length,
        maxItems: s.shape.length,
        description: `the model's shape is ${shapeText(s.shape)} (-1: any size)`,
      },
      datatype: { type: 'string', enum: [datatype] },
      data: {
        type: 'array',
        items: elementSchema(datatype),
        description: 'every element, flat in row-major order (nested lists are accepted too)',
      },
      parameters: {
        type: 'object',
        properties: { binary_data_size: { type: 'integer', minimum: 0 } },
      },
    },
  };
}

function inferRequestSchema(m: ModelInfo): JsonObject {
  const inputs = m.inputs.map(inputSchema);
  const outputNames = m.outputs.filter((o) => o.type !== 'unknown').map((o) => o.name);
  return {
    type: 'object',
    required: ['inputs'],
    properties: {
      id: { type: 'string' },
      parameters: {
        type: 'object',
        properties: { binary_data_output: { type: 'boolean' } },
      },
      inputs: {
        type: 'array',
        minItems: m.inputs.length,
        maxItems: m.inputs.length,
        description: `every input of \`${m.name}\`: ${m.inputs.map((s) => `${s.name} ${datatypeOf(s)} ${shapeText(s.shape)}`).join(', ')}`,
        items: inputs.length === 1 ? inputs[0]! : { oneOf: inputs },
      },
      outputs: {
        type: 'array',
        description: 'the outputs wanted (default: all)',
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', enum: outputNames },
            parameters: { type: 'object', properties: { binary_data: { type: 'boolean' } } },
          },
        },
      },
    },
  };
}

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

const jsonBody = (schema: JsonObject, description: string, example?: unknown): JsonObject => ({
  description,
  content: {
    'application/json': example === undefined ? { schema } : { schema, example },
  },
});

const ERRORS: Readonly<Record<string, string>> = {
  '400': 'bad input: unknown tensor, wrong shape, datatype or size, malformed JSON',
  '401': 'server.auth is on and no valid bearer token came',
  '404': 'unknown model',
  '413': 'body larger than server.max_body_mb',
  '503': 'overloaded (Retry-After) or not ready',
  '504': 'not answered within traffic.timeout_s',
};

function errors(...codes: string[]): JsonObject {
  return Object.fromEntries(
    codes.map((c) => [c, jsonBody(ref('Error'), ERRORS[c] ?? 'error')] as const),
  );
}

interface Operation {
  readonly summary: string;
  readonly tag: string;
  readonly ok: JsonObject;
  readonly errors?: readonly string[];
  readonly open?: boolean;
  readonly body?: JsonObject;
}

function operation(id: string, op: Operation): JsonObject {
  return {
    operationId: id,
    summary: op.summary,
    tags: [op.tag],
    ...(op.open ? { security: [] } : {}),
    ...(op.body ? { requestBody: op.body } : {}),
    responses: { '200': op.ok, ...errors(...(op.open ? [] : ['401']), ...(op.errors ?? [])) },
  };
}

function modelPaths(m: ModelInfo): Record<string, JsonObject> {
  const base = `/v2/models/${encodeURIComponent(m.name)}`;
  const id = m.name.replace(/[^A-Za-z0-9_]/g, '_');
  const tag = `model ${m.name}`;
  const example = exampleRequest(m);
  return {
    [base]: {
      get: operation(`${id}_metadata`, {
        summary: `Metadata of \`${m.name}\`: its inputs and outputs`,
        tag,
        ok: jsonBody(
          ref('ModelMetadata'),
          'name, versions, platform, inputs, outputs',
          modelMetadata(m),
        ),
        errors: ['404'],
      }),
    },
    [`${base}/ready`]: {
      get: operation(`${id}_ready`, {
        summary: `Whether a worker holding \`${m.name}\` is ready`,
        tag,
        ok: jsonBody(ref('ModelReady'), 'ready', { name: m.name, ready: true }),
        errors: ['404', '503'],
      }),
    },
    [`${base}/infer`]: {
      post: operation(`${id}_infer`, {
        summary: `Run \`${m.name}\``,
        tag,
        body: {
          required: true,
          content: {
            'application/json': { schema: inferRequestSchema(m), example },
            'application/octet-stream': {
              schema: {
                type: 'string',
                format: 'binary',
                description:
                  "the binary tensor extension: the JSON header, then the tensors' bytes (Inference-Header-Content-Length)",
              },
            },
          },
        },
        ok: jsonBody(ref('InferResponse'), "the outputs (with the model's name and version)"),
        errors: ['400', '404', '413', '503', '504'],
      }),
    },
    [`${base}/config`]: {
      get: operation(`${id}_config`, {
        summary: `Triton's model configuration of \`${m.name}\``,
        tag,
        ok: jsonBody(
          { type: 'object' },
          'max_batch_size, input, output, dynamic_batching, instance_group',
        ),
        errors: ['404'],
      }),
    },
    [`${base}/stats`]: {
      get: operation(`${id}_stats`, {
        summary: `Triton's statistics of \`${m.name}\``,
        tag,
        ok: jsonBody(ref('ModelStats'), 'counts and times, batch_stats per batch size'),
        errors: ['404'],
      }),
    },
  };
}

const SERVER_PATHS: Record<string, JsonObject> = {
  '/v2/health/live': {
    get: operation('server_live', {
      summary: 'The server is live',
      tag: 'health',
      open: true,
      ok: jsonBody({ type: 'object', properties: { live: { type: 'boolean' } } }, 'live'),
    }),
  },
  '/v2/health/ready': {
    get: operation('server_ready', {
      summary: 'Every worker has its sessions loaded',
      tag: 'health',
      open: true,
      ok: jsonBody(ref('Readiness'), 'ready, with each worker’s state'),
      errors: ['503'],
    }),
  },
  '/v2': {
    get: operation('server_metadata', {
      summary: 'Server name, version and the extensions it serves',
      tag: 'server',
      ok: jsonBody(ref('ServerMetadata'), 'name, version, extensions'),
    }),
  },
  '/v2/models/stats': {
    get: operation('all_stats', {
      summary: "Triton's statistics of every model",
      tag: 'server',
      ok: jsonBody(ref('ModelStats'), 'per model'),
    }),
  },
  '/v2/repository/index': {
    post: operation('repository_index', {
      summary: 'Every model with its version and state',
      tag: 'server',
      ok: jsonBody(
        {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              version: { type: 'string' },
              state: { type: 'string', enum: ['READY', 'LOADING', 'UNAVAILABLE'] },
              reason: { type: 'string' },
            },
          },
        },
        'the models',
      ),
    }),
  },
  '/metrics': {
    get: operation('metrics', {
      summary: 'Prometheus metrics',
      tag: 'server',
      ok: {
        description: 'the text format',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    }),
  },
};

const tensorMetadata: JsonObject = {
  type: 'object',
  required: ['name', 'datatype', 'shape'],
  properties: {
    name: { type: 'string' },
    datatype: { type: 'string' },
    shape: { type: 'array', items: { type: 'integer' }, description: '-1 for dynamic' },
  },
};

const SCHEMAS: JsonObject = {
  Error: {
    type: 'object',
    required: ['error', 'code'],
    properties: {
      error: { type: 'string' },
      code: { type: 'string', example: 'BENTO_ERR_INFER_INVALID' },
    },
  },
  TensorMetadata: tensorMetadata,
  ModelMetadata: {
    type: 'object',
    required: ['name', 'versions', 'platform', 'inputs', 'outputs'],
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: ref('TensorMetadata') },
      outputs: { type: 'array', items: ref('TensorMetadata') },
    },
  },
  ModelReady: {
    type: 'object',
    properties: { name: { type: 'string' }, ready: { type: 'boolean' } },
  },
  Readiness: {
    type: 'object',
    properties: {
      ready: { type: 'boolean' },
      workers: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            service: { type: 'string' },
            worker: { type: 'integer' },
            state: { type: 'string' },
          },
        },
      },
    },
  },
  ServerMetadata: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      extensions: { type: 'array', items: { type: 'string' } },
    },
  },
  ModelStats: {
    type: 'object',
    properties: { model_stats: { type: 'array', items: { type: 'object' } } },
  },
  InferResponse: {
    type: 'object',
    required: ['model_name', 'outputs'],
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      outputs: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'datatype', 'shape'],
          properties: {
            name: { type: 'string' },
            datatype: { type: 'string' },
            shape: { type: 'array', items: { type: 'integer' } },
            data: { type: 'array', items: {} },
            parameters: { type: 'object', properties: { binary_data_size: { type: 'integer' } } },
          },
        },
      },
    },
  },
};

/** The document: the server's routes, then each model's, in the order the models are served. */
export function buildOpenApi(models: readonly ModelInfo[], opts: OpenApiOptions): JsonObject {
  const paths: JsonObject = { ...SERVER_PATHS };
  for (const m of models) Object.assign(paths, modelPaths(m));
  return {
    openapi: '3.0.3',
    info: {
      title: `bento-run: ${opts.name}`,
      version: opts.version,
      description:
        'The Open Inference Protocol (KServe v2 REST) with Triton’s extensions, as this server serves it. With server.auth on, every route but the health routes needs `Authorization: Bearer TOKEN`.',
    },
    tags: [
      { name: 'health', description: 'served without a token' },
      { name: 'server', description: 'the server and every model' },
      ...models.map((m) => ({
        name: `model ${m.name}`,
        description: m.platform === 'ensemble' ? 'a pipeline' : `service \`${m.service}\``,
      })),
    ],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    // Either: the token is needed only when server.auth is on.
    security: [{ bearer: [] }, {}],
  };
}
