import { context, propagation } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * W3C Trace Context propagation (https://www.w3.org/TR/trace-context/) and an AsyncLocalStorage
 * context, installed once whether or not an SDK runs: the BFF always forwards an incoming
 * `traceparent` to the IdP and upstreams, and its log lines carry the trace id. An SDK started
 * before (startTracing) has installed its own and this does nothing.
 */
export async function installTraceContext(): Promise<void> {
  const [{ AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
  ]);
  if (!installed) {
    installed = true;
    // Both return false when something (the SDK) registered first; that registration stays.
    const manager = new AsyncLocalStorageContextManager().enable();
    if (!context.setGlobalContextManager(manager)) manager.disable();
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  }
}
let installed = false;

/**
 * Whether the standard variables ask for traces (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none switch them off; OTEL_TRACES_EXPORTER=otlp or
 * console, or an OTLP endpoint, switch them on. Nothing set: no SDK is loaded at all.
 */
export function tracingRequested(env: Env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = exporterNames(env);
  if (exporters.length > 0) return !exporters.includes('none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

function exporterNames(env: Env): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

export interface Tracing {
  /** The exporter in use, for the startup log line. */
  readonly exporter: string;
  /** Export every ended span now. */
  flush(): Promise<void>;
  /** Flush pending spans and stop (on shutdown). */
  shutdown(): Promise<void>;
}

/** True once startTracing has registered an SDK: spans are recorded, so store operations get theirs. */
export function tracingStarted(): boolean {
  return sdkStarted;
}
let sdkStarted = false;

/**
 * Start the OpenTelemetry SDK with an OTLP/HTTP exporter when tracingRequested(env); undefined
 * otherwise. The SDK is loaded by dynamic import only then, so an untraced BFF loads no SDK code.
 * The exporters read their own OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout, TLS);
 * OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL picks http/protobuf (the specification's default) or
 * http/json; OTEL_TRACES_SAMPLER and OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES apply as usual.
 */
export async function startTracing(env: Env, serviceVersion: string): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const [sdk, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ]);
  const protocol = (
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ??
    'http/protobuf'
  ).trim();
  const console_ = exporterNames(env).includes('console');
  let exporter: SpanExporter;
  let name: string;
  if (console_ && !exporterNames(env).includes('otlp')) {
    exporter = new sdk.ConsoleSpanExporter();
    name = 'console';
  } else if (protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    exporter = new OTLPTraceExporter();
    name = 'otlp http/json';
  } else if (protocol === 'http/protobuf') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    exporter = new OTLPTraceExporter();
    name = 'otlp http/protobuf';
  } else {
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported (http/protobuf or http/json)`);
  }
  const detected = resources.detectResources({ detectors: [resources.envDetector] });
  const resource = resources
    .resourceFromAttributes({
      'service.name': env.OTEL_SERVICE_NAME?.trim() || 'fapi-bff',
      'service.version': serviceVersion,
    })
    .merge(detected);
  const provider = new sdk.NodeTracerProvider({
    resource,
    spanProcessors: [new sdk.BatchSpanProcessor(exporter)],
  });
  provider.register();
  installed = true;
  sdkStarted = true;
  return {
    exporter: name,
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
