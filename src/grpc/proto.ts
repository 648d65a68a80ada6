/**
 * The gRPC API's vocabulary, shared by the server and the client: the project's
 * proto/inference.proto (Triton's names and field numbers), loaded at run time with
 * @grpc/proto-loader, and TypeScript shapes of the messages as the loader hands them over.
 */
import { fileURLToPath } from 'node:url';
import {
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ProtocolDatatype } from '../tensor/datatypes.js';

/** The .proto, shipped in the package: dist/src/grpc/proto.js -> proto/inference.proto. */
export const PROTO_FILE = fileURLToPath(new URL('../../../proto/inference.proto', import.meta.url));

/**
 * As the loader decodes: field names as in the .proto, 64-bit integers as decimal strings (no
 * precision lost, no Long objects), enums by name, absent fields filled with their defaults,
 * and a oneof's member name in its own property.
 */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export const SERVICE = 'inference.GRPCInferenceService';

let service: ServiceClientConstructor | undefined;

/** The generated client constructor; its `.service` is what a server adds. */
export function inferenceService(): ServiceClientConstructor {
  if (!service) {
    const pkg = loadPackageDefinition(loadSync(PROTO_FILE, LOADER_OPTIONS));
    service = (pkg.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor;
  }
  return service;
}

export function inferenceServiceDefinition(): ServiceDefinition {
  return inferenceService().service;
}

// ---- messages, as decoded (64-bit integers are decimal strings) -------------------------------

/** int64 / uint64: a decimal string when decoded; a number, string or bigint-as-string to send. */
export type Int64 = string;

export interface InferParameter {
  readonly parameter_choice?: string;
  readonly bool_param?: boolean;
  readonly int64_param?: Int64;
  readonly string_param?: string;
  readonly double_param?: number;
  readonly uint64_param?: Int64;
}

export interface InferTensorContents {
  readonly bool_contents: readonly boolean[];
  readonly int_contents: readonly number[];
  readonly int64_contents: readonly Int64[];
  readonly uint_contents: readonly number[];
  readonly uint64_contents: readonly Int64[];
  readonly fp32_contents: readonly number[];
  readonly fp64_contents: readonly number[];
  readonly bytes_contents: readonly Buffer[];
}

export interface InferInputTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly Int64[];
  readonly parameters: Readonly<Record<string, InferParameter>>;
  readonly contents: InferTensorContents | null;
}

export interface ModelInferRequest {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly parameters: Readonly<Record<string, InferParameter>>;
  readonly inputs: readonly InferInputTensor[];
  readonly outputs: readonly {
    readonly name: string;
    readonly parameters: Readonly<Record<string, InferParameter>>;
  }[];
  readonly raw_input_contents: readonly Buffer[];
}

export interface InferOutputTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly (Int64 | number)[];
  readonly parameters?: Readonly<Record<string, InferParameter>>;
  readonly contents?: InferTensorContents | null;
}

export interface ModelInferResponse {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly outputs: readonly InferOutputTensor[];
  readonly raw_output_contents: readonly Buffer[];
}

export interface TensorMetadata {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly (Int64 | number)[];
}

export interface ModelMetadataResponse {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
}

export interface ServerMetadataResponse {
  readonly name: string;
  readonly version: string;
  readonly extensions: readonly string[];
}

/** A name and an optional version: ModelReady, ModelMetadata, ModelConfig, ModelStatistics. */
export interface ModelRequest {
  readonly name: string;
  readonly version: string;
}

export interface RepositoryIndexRequest {
  readonly repository_name: string;
  readonly ready: boolean;
}

export interface RepositoryModelRequest {
  readonly repository_name: string;
  readonly model_name: string;
}

/** The typed-contents field that carries each datatype; FP16 has none (raw contents only). */
export const CONTENTS_FIELD = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
  FP16: null,
} as const satisfies Record<ProtocolDatatype, keyof InferTensorContents | null>;
