/**
 * The container and Kubernetes files, checked without a cluster or a Docker engine:
 * - every manifest in deploy/k8s against the Kubernetes API schemas (kubernetes-models: its
 *   validators for types, required fields and formats, and its TypeScript declarations, compiled,
 *   for unknown or misspelt fields, which the JSON validators let through);
 * - what the manifests must say to each other, to the server and to the Dockerfile (probe paths,
 *   startup budget vs POSE_STARTUP_TIMEOUT_MS, drain time vs SHUTDOWN_GRACE_MS, the HPA's metric
 *   exported by /metrics, selectors, ports, the non-root uid);
 * - the Dockerfile's shape (dockerfile-ast): CUDA runtime base, non-root USER, HEALTHCHECK on
 *   /health/live, the files it copies exist and are not excluded by .dockerignore.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Copy, DockerfileParser, type Healthcheck } from 'dockerfile-ast';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { ConfigMap, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Admission } from '../admission.js';
import { ServerMetrics } from '../metrics.js';
import { REPO } from './support/server-process.js';

const K8S = path.join(REPO, 'deploy', 'k8s');

/** apiVersion/kind → the kubernetes-models class (runtime validator) and its declaration (strict field check). */
const MODELS: Record<
  string,
  { model: { new (data: Record<string, unknown>): { validate(): void } }; typeModule: string; typeName: string }
> = {
  'apps/v1/Deployment': { model: Deployment, typeModule: 'kubernetes-models/apps/v1/Deployment', typeName: 'IDeployment' },
  'v1/Service': { model: Service, typeModule: 'kubernetes-models/v1/Service', typeName: 'IService' },
  'v1/ConfigMap': { model: ConfigMap, typeModule: 'kubernetes-models/v1/ConfigMap', typeName: 'IConfigMap' },
  'apps/v1/StatefulSet': { model: StatefulSet, typeModule: 'kubernetes-models/apps/v1/StatefulSet', typeName: 'IStatefulSet' },
  'v1/PersistentVolumeClaim': {
    model: PersistentVolumeClaim,
    typeModule: 'kubernetes-models/v1/PersistentVolumeClaim',
    typeName: 'IPersistentVolumeClaim',
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler,
    typeModule: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    typeName: 'IHorizontalPodAutoscaler',
  },
};

/** A manifest as the schema checks take it: the key of its schema, and the fields they validate. */
interface ManifestFields {
  apiVersion: string;
  kind: string;
  [field: string]: unknown;
}

interface Manifest {
  file: string;
  // biome-ignore lint/suspicious/noExplicitAny: a parsed YAML manifest (Deployment, Service, HPA, ConfigMap) that each test walks down its own path, and that the broken-manifest test mutates into invalid shapes on purpose
  doc: any;
}

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(K8S)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort()) {
    for (const d of parseAllDocuments(readFileSync(path.join(K8S, file), 'utf8'))) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
      const doc = d.toJS();
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

/** Runtime schema validation (kubernetes-models); returns the error message or null. */
function schemaError(doc: ManifestFields): string | null {
  const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!entry) return `no schema known for ${doc.apiVersion} ${doc.kind}`;
  try {
    new entry.model(doc).validate();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Strict field check: each manifest as an object literal typed with kubernetes-models' interface,
 * compiled by TypeScript (excess property checks catch unknown and misspelt fields).
 */
function fieldErrors(docs: ManifestFields[]): string[] {
  const lines: string[] = [];
  docs.forEach((doc, i) => {
    const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (!entry) return;
    lines.push(`import type { ${entry.typeName} as T${i} } from '${entry.typeModule}';`);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(doc)};`);
  });
  const fileName = path.join(REPO, 'deploy', 'k8s', '__manifests_check__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const source = lines.join('\n');
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    path.resolve(name) === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').slice(-1)[0]);
}

const manifests = loadManifests();
const find = (kind: string) => {
  const m = manifests.find((x) => x.doc.kind === kind);
  if (!m) throw new Error(`no ${kind} in deploy/k8s`);
  return m.doc;
};
const deployment = find('Deployment');
const container = deployment.spec.template.spec.containers[0];
const env = (name: string) => container.env.find((e: { name: string; value?: string }) => e.name === name)?.value as string | undefined;

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('are valid against the Kubernetes API schemas', () => {
    expect(manifests.map((m) => `${m.file}: ${m.doc.kind}`)).toEqual([
      'deployment.yaml: Deployment',
      'hpa.yaml: HorizontalPodAutoscaler',
      'prometheus-adapter-rules.yaml: ConfigMap',
      'redis.yaml: Service',
      'redis.yaml: StatefulSet',
      'service.yaml: Service',
      'storage.yaml: PersistentVolumeClaim',
    ]);
    for (const m of manifests) expect(schemaError(m.doc), m.file).toBeNull();
  });

  it('have no unknown or misspelt fields (kubernetes-models declarations, compiled)', () => {
    expect(fieldErrors(manifests.map((m) => m.doc))).toEqual([]);
  }, 60_000);

  it('the checks catch broken manifests (they can fail)', () => {
    const broken = structuredClone(deployment);
    broken.spec.replicas = 'two';
    expect(schemaError(broken)).toMatch(/replicas must be integer/);
    const noPort = structuredClone(deployment);
    delete noPort.spec.template.spec.containers[0].livenessProbe.httpGet.port;
    expect(schemaError(noPort)).toMatch(/httpGet must have required property '?port'?/);
    const typo = structuredClone(deployment);
    typo.spec.template.spec.containers[0].readinesProbe = typo.spec.template.spec.containers[0].readinessProbe;
    expect(schemaError(typo)).toBeNull(); // the JSON validators let unknown fields through…
    expect(fieldErrors([typo]).join('\n')).toMatch(/readinesProbe/); // …the compiled declarations do not
  }, 60_000);

  it('kustomization.yaml lists exactly the manifests', () => {
    const k = parseAllDocuments(readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'))[0].toJS();
    expect(k.kind).toBe('Kustomization');
    expect([...k.resources].sort()).toEqual([...new Set(manifests.map((m) => m.file))].sort());
  });

  it('Deployment: probes on the right endpoints, startup budget above the model-load timeout, GPU, drain', () => {
    const port = container.ports.find((p: { name: string }) => p.name === 'http');
    expect(port.containerPort).toBe(3001);
    expect(container.startupProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });

    const startupBudgetS = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
    expect(startupBudgetS).toBeGreaterThan(Number(env('POSE_STARTUP_TIMEOUT_MS')) / 1000);
    // Liveness must not kill a pod whose workers are merely slow: it probes the event loop only.
    expect(container.livenessProbe.httpGet.path).not.toBe('/health');

    expect(container.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(container.resources.requests['nvidia.com/gpu']).toBe(container.resources.limits['nvidia.com/gpu']);
    expect(Number(env('POSE_WORKERS'))).toBe(2 * Number(container.resources.limits['nvidia.com/gpu']));
    expect(env('POSE_DEVICE')).toMatch(/^cuda/);

    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    expect(container.lifecycle.preStop.exec.command[0]).toBe('sleep');
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(preStopS + Number(env('SHUTDOWN_GRACE_MS')) / 1000);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('jobs: Redis with its append-only file on a volume, a ReadWriteMany folder mounted at POSE_STORAGE_DIR', () => {
    const redis = manifests.find((m) => m.doc.kind === 'StatefulSet')?.doc;
    const redisService = manifests.find((m) => m.doc.kind === 'Service' && m.doc.metadata.name === 'posepool-redis')?.doc;
    expect(redis.spec.template.spec.containers[0].args.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.spec.template.spec.containers[0].args.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    const dataMount = redis.spec.template.spec.containers[0].volumeMounts.find((v: { name: string }) => v.name === 'data');
    expect(redis.spec.volumeClaimTemplates.map((c: { metadata: { name: string } }) => c.metadata.name)).toContain(dataMount.name);
    expect(env('REDIS_URL')).toBe(`redis://${redisService.metadata.name}:${redisService.spec.ports[0].port}`);

    const claim = find('PersistentVolumeClaim');
    expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
    const volume = deployment.spec.template.spec.volumes.find(
      (v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim,
    );
    expect(volume.persistentVolumeClaim.claimName).toBe(claim.metadata.name);
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === volume.name);
    expect(mount.mountPath).toBe(env('POSE_STORAGE_DIR'));
  });

  it('Service, HPA and adapter rule fit the Deployment and the metrics the server exports', async () => {
    const service = manifests.find((m) => m.doc.kind === 'Service' && m.doc.metadata.name === deployment.metadata.name)?.doc;
    const labels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    for (const [k, v] of Object.entries(service.spec.selector)) expect(labels[k]).toBe(v);
    expect(container.ports.map((p: { name: string }) => p.name)).toContain(service.spec.ports[0].targetPort);
    // Any pod answers for any job (Redis + shared storage): no affinity pins clients to one pod.
    expect(service.spec.sessionAffinity).toBeUndefined();

    const hpa = find('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    const metric = hpa.spec.metrics[0].pods.metric.name;
    expect(Number(hpa.spec.metrics[0].pods.target.averageValue)).toBe(Number(env('MAX_ACTIVE_VIDEOS')));

    // The metric is one /metrics really exports, and it is the admission queue's depth.
    const admission = new Admission(2, 8);
    const metrics = new ServerMetrics(
      { pool: { health: () => ({ status: 'ready', ready: 1, desired: 1, workers: [] }) }, admission },
      { defaultMetrics: false },
    );
    await admission.enter();
    await admission.enter();
    void admission.enter().catch(() => undefined);
    const text = (await metrics.scrape()).body;
    expect(text).toMatch(new RegExp(`^${metric} 3$`, 'm'));

    const rules = parseAllDocuments(find('ConfigMap').data['config.yaml'])[0].toJS();
    expect(rules.rules[0].seriesQuery).toContain(metric);
    expect(rules.rules[0].name.as).toBe(metric);

    // The jobs signal: the whole queue's depth, an external metric the server exports and the adapter serves.
    const external = hpa.spec.metrics.find((m: { type: string }) => m.type === 'External').external;
    expect(external.metric.name).toBe('posepool_jobs_queue_depth');
    expect(rules.externalRules[0].name.as).toBe(external.metric.name);
    expect(rules.externalRules[0].metricsQuery).toMatch(/^max\(/); // every pod reports the same number
    const withJobs = new ServerMetrics(
      {
        pool: { health: () => ({ status: 'ready', ready: 1, desired: 1, workers: [] }) },
        admission: new Admission(2, 8),
        jobs: { counts: async () => ({ queued: 5, running: 2, succeeded: 9, failed: 1, cancelled: 0 }), depth: async () => 7 },
      },
      { defaultMetrics: false },
    );
    expect((await withJobs.scrape()).body).toMatch(new RegExp(`^${external.metric.name} 7$`, 'm'));

    const scrape = deployment.spec.template.metadata.annotations;
    expect(scrape['prometheus.io/path']).toBe('/metrics');
    expect(Number(scrape['prometheus.io/port'])).toBe(3001);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
  const dockerfile = DockerfileParser.parse(text);
  const instructions = dockerfile.getInstructions();
  const args = Object.fromEntries(dockerfile.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue()]));
  const froms = dockerfile.getFROMs();
  const runtime = froms.at(-1)!;
  const runtimeStart = runtime.getRange().start.line;
  const inRuntime = instructions.filter((i) => i.getRange().start.line >= runtimeStart);
  const last = (keyword: string) => inRuntime.filter((i) => i.getKeyword() === keyword).at(-1);

  it('parses cleanly, in stages', () => {
    expect(froms.length).toBe(2);
    expect(froms.map((f) => f.getBuildStage())).toEqual(['build', 'runtime']);
  });

  it('runs on a CUDA runtime base image', () => {
    const image = runtime.getImage()!.replace(/^\$\{(\w+)\}$/, (_m, name: string) => args[name] ?? '');
    expect(image).toMatch(/^nvidia\/cuda:[\d.]+-(cudnn-)?runtime-/);
  });

  it('runs as a non-root user (the uid the Deployment expects)', () => {
    const user = last('USER')!.getArgumentsContent()!;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(Number(user.split(':')[0])).toBe(deployment.spec.template.spec.securityContext.runAsUser);
    // USER comes after the last RUN of the runtime stage: nothing after it runs as root.
    const lines = (k: string) => inRuntime.filter((i) => i.getKeyword() === k).map((i) => i.getRange().start.line);
    expect(Math.max(...lines('RUN'))).toBeLessThan(lines('USER').at(-1)!);
  });

  it('has a HEALTHCHECK on /health/live, the port the server listens on, and starts the server', () => {
    const healthcheck = last('HEALTHCHECK') as Healthcheck;
    expect(healthcheck.getArgumentsContent()).toMatch(/^CMD \[.*\/health\/live.*\]$/);
    const flags = Object.fromEntries(healthcheck.getFlags().map((f) => [f.getName(), f.getValue()]));
    expect(Object.keys(flags).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
    expect(last('EXPOSE')!.getArgumentsContent()).toBe('3001');
    expect(last('CMD')!.getArgumentsContent()).toBe('["node", "--max-semi-space-size=8", "dist/server/main.js"]');
    expect(last('ENV')!.getArgumentsContent()).toMatch(/POSE_PYTHON=\/opt\/pose-venv\/bin\/python/);
  });

  it('copies files that exist and that .dockerignore does not exclude; COPY --from names a stage', () => {
    const ignored = readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const stages = new Set(froms.map((f) => f.getBuildStage()));
    for (const copy of instructions.filter((i): i is Copy => i.getKeyword() === 'COPY')) {
      const from = copy.getFromFlag()?.getValue();
      const sources = copy
        .getArguments()
        .map((a) => a.getValue())
        .slice(0, -1);
      if (from) {
        expect(stages.has(from), `COPY --from=${from}`).toBe(true);
        continue;
      }
      for (const src of sources) {
        expect(existsSync(path.join(REPO, src)), src).toBe(true);
        expect(ignored.includes(src) || ignored.includes(src.replace(/\/$/, '')), `${src} is in .dockerignore`).toBe(false);
      }
    }
    for (const local of ['node_modules', 'dist', '.git', 'pose-service/.venv', 'pose-service/.models', '.env']) {
      expect(ignored, local).toContain(local);
    }
  });
});
