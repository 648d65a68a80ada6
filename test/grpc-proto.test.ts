// proto/inference.proto against the files clients are generated from: every message, field,
// enum value and RPC it defines has the name, number, type and cardinality of Triton's
// grpc_service.proto / model_config.proto (tritonclient.grpc), and it holds every field of the
// Open Inference Protocol's grpc_predict_v2.proto (KServe's client). Copies of those files are in
// test/fixtures/protocol/, unchanged.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { PROTO } from './helpers/grpc.js';
import { ROOT } from './helpers/server.js';

const PROTOCOL = join(ROOT, 'test', 'fixtures', 'protocol');

function load(file: string): protobuf.Root {
  const root = new protobuf.Root();
  // Triton's grpc_service.proto imports "model_config.proto" from its own folder.
  root.resolvePath = (_origin, target) =>
    target.startsWith('/') ? target : join(PROTOCOL, target);
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  return root;
}

const ours = (() => {
  const root = new protobuf.Root();
  root.loadSync(PROTO, { keepCase: true });
  root.resolveAll();
  return root;
})();
const triton = load(join(PROTOCOL, 'grpc_service.proto'));
const kserve = load(join(PROTOCOL, 'grpc_predict_v2.proto'));

/** Every message, enum and service under a namespace, nested ones included. */
function all(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  return ns.nestedArray.flatMap((o) =>
    o instanceof protobuf.Namespace || o instanceof protobuf.Type
      ? [...(o instanceof protobuf.Type || o instanceof protobuf.Service ? [o] : []), ...all(o)]
      : [o],
  );
}

const byKind = <T>(root: protobuf.Root, kind: abstract new (...a: never[]) => T) =>
  all(root).filter((o): o is protobuf.ReflectionObject & T => o instanceof kind);

/** What the wire and generated code depend on, for one field. */
function describeField(f: protobuf.Field) {
  return {
    id: f.id,
    type: f.resolvedType ? f.resolvedType.fullName : f.type,
    repeated: f.repeated,
    map: f instanceof protobuf.MapField ? f.keyType : null,
    oneof: f.partOf?.name ?? null,
  };
}

function lookupType(root: protobuf.Root, fullName: string): protobuf.Type | null {
  try {
    return root.lookupType(fullName);
  } catch {
    return null;
  }
}

test('the package, the service and the RPCs clients call', () => {
  const service = ours.lookupService('inference.GRPCInferenceService');
  assert.deepEqual(Object.keys(service.methods).sort(), [
    'ModelConfig',
    'ModelInfer',
    'ModelMetadata',
    'ModelReady',
    'ModelStatistics',
    'RepositoryIndex',
    'RepositoryModelLoad',
    'RepositoryModelUnload',
    'ServerLive',
    'ServerMetadata',
    'ServerReady',
  ]);
});

test('every RPC as Triton declares it', () => {
  const theirs = triton.lookupService('inference.GRPCInferenceService');
  for (const [name, m] of Object.entries(
    ours.lookupService('inference.GRPCInferenceService').methods,
  )) {
    const t = theirs.methods[name];
    assert.ok(t, `Triton has no RPC ${name}`);
    m.resolve();
    t.resolve();
    assert.deepEqual(
      [
        m.resolvedRequestType!.fullName,
        m.resolvedResponseType!.fullName,
        !!m.requestStream,
        !!m.responseStream,
      ],
      [
        t.resolvedRequestType!.fullName,
        t.resolvedResponseType!.fullName,
        !!t.requestStream,
        !!t.responseStream,
      ],
      name,
    );
  }
});

test("every message field: Triton's name, number, type, cardinality and oneof", () => {
  const messages = byKind(ours, protobuf.Type);
  assert.ok(messages.length >= 40, `${messages.length} messages`);
  for (const type of messages) {
    const theirs = lookupType(triton, type.fullName);
    assert.ok(theirs, `Triton has no message ${type.fullName}`);
    for (const f of type.fieldsArray) {
      const t: protobuf.Field | undefined = theirs.fields[f.name];
      assert.ok(t, `${type.fullName}.${f.name}: not in Triton's message`);
      assert.deepEqual(describeField(f), describeField(t), `${type.fullName}.${f.name}`);
    }
    // Field numbers are unique in both; none of ours reuses a number Triton gives another name.
    for (const f of type.fieldsArray) {
      const sameNumber: protobuf.Field | undefined = theirs.fieldsArray.find((t) => t.id === f.id);
      assert.equal(sameNumber?.name, f.name, `${type.fullName}: field ${f.id}`);
    }
  }
});

test("every enum value: Triton's name and number", () => {
  const enums = byKind(ours, protobuf.Enum);
  assert.ok(enums.length >= 3);
  for (const e of enums) {
    const theirs = triton.lookupEnum(e.fullName);
    for (const [name, id] of Object.entries(e.values)) {
      assert.equal(theirs.values[name], id, `${e.fullName}.${name}`);
    }
  }
  // DataType is complete: clients map every value.
  assert.deepEqual(
    { ...ours.lookupEnum('inference.DataType').values },
    { ...triton.lookupEnum('inference.DataType').values },
  );
});

test("the Open Inference Protocol's messages are all here, field for field", () => {
  for (const type of byKind(kserve, protobuf.Type)) {
    const mine = lookupType(ours, type.fullName);
    assert.ok(mine, `no message ${type.fullName}`);
    for (const f of type.fieldsArray) {
      const m: protobuf.Field | undefined = mine.fields[f.name];
      assert.ok(m, `${type.fullName}.${f.name} missing`);
      assert.deepEqual(describeField(m), describeField(f), `${type.fullName}.${f.name}`);
    }
  }
});

test('the fields the served RPCs need are all there (none left out by mistake)', () => {
  const names = (full: string) => Object.keys(ours.lookupType(full).fields).sort();
  assert.deepEqual(names('inference.ModelInferRequest'), [
    'id',
    'inputs',
    'model_name',
    'model_version',
    'outputs',
    'parameters',
    'raw_input_contents',
  ]);
  assert.deepEqual(names('inference.ModelInferResponse'), [
    'id',
    'model_name',
    'model_version',
    'outputs',
    'parameters',
    'raw_output_contents',
  ]);
  assert.equal(
    Object.keys(ours.lookupType('inference.InferTensorContents').fields).length,
    Object.keys(triton.lookupType('inference.InferTensorContents').fields).length,
  );
  assert.equal(
    Object.keys(ours.lookupType('inference.InferParameter').fields).length,
    Object.keys(triton.lookupType('inference.InferParameter').fields).length,
  );
});
