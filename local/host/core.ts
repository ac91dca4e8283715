// The `@azure/functions-core` module that the Azure Functions Node.js worker provides at runtime.
// `@azure/functions` registers functions, hooks and its programming model through it, so providing
// it is all a host needs to capture an app written against the real library.
import Module from 'node:module';
import path from 'node:path';

export type LogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type LogCategory = 'user' | 'system' | 'customMetric';

export interface NullableString {
  value?: string | null;
}

export interface HttpCookie {
  name?: string | null;
  value?: string | null;
  domain?: NullableString | null;
  path?: NullableString | null;
  expires?: { value?: { seconds?: number | null; nanos?: number | null } | null } | null;
  secure?: { value?: boolean | null } | null;
  httpOnly?: { value?: boolean | null } | null;
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone' | null;
  maxAge?: { value?: number | null } | null;
}

export interface HttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  query?: Record<string, string> | null;
  params?: Record<string, string> | null;
  body?: TypedData | null;
  statusCode?: string | null;
  cookies?: HttpCookie[] | null;
  enableContentNegotiation?: boolean | null;
}

export interface TypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  int?: number | null;
  double?: number | null;
  http?: HttpData | null;
}

export interface BindingInfo {
  type?: string | null;
  direction?: 'in' | 'out' | 'inout' | null;
  [property: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, BindingInfo>;
  retryOptions?: unknown;
}

export interface ParameterBinding {
  name?: string | null;
  data?: TypedData | null;
}

export interface InvocationRequest {
  invocationId: string;
  functionId: string;
  inputData: ParameterBinding[];
  triggerMetadata?: Record<string, TypedData>;
  traceContext?: { traceParent?: string; traceState?: string; attributes?: Record<string, string> };
}

export interface InvocationResponse {
  invocationId?: string | null;
  outputData?: ParameterBinding[] | null;
  returnValue?: TypedData | null;
}

export type InvocationState = 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';

export interface CoreInvocationContext {
  invocationId: string;
  request: InvocationRequest;
  metadata: RegisteredFunction['metadata'];
  state?: InvocationState;
  log(level: LogLevel, category: LogCategory, message: string): void;
}

export interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<InvocationResponse>;
}

export interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreContext: CoreInvocationContext): InvocationModel | Promise<InvocationModel>;
  getCapabilities?(capabilities: Record<string, string>): Record<string, string> | Promise<Record<string, string>>;
}

export type FunctionCallback = (...args: unknown[]) => unknown;
export type HookCallback = (context: Record<string, unknown>) => unknown;
export type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation' | 'log';

export interface RegisteredFunction {
  readonly name: string;
  /** Shaped like the worker's RpcFunctionMetadata, which is what the programming model reads. */
  readonly metadata: {
    name: string;
    functionId: string;
    bindings: Record<string, BindingInfo>;
    rawBindings: string[];
    scriptFile: string;
    directory?: string;
    retryOptions?: unknown;
  };
  readonly callback: FunctionCallback;
  readonly triggerName: string;
  readonly trigger: BindingInfo;
}

export class Disposable {
  static from(...disposables: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => {
      for (const d of disposables) d.dispose();
    });
  }

  #onDispose: (() => unknown) | undefined;

  constructor(onDispose: () => unknown) {
    this.#onDispose = onDispose;
  }

  dispose(): unknown {
    const onDispose = this.#onDispose;
    this.#onDispose = undefined;
    return onDispose?.();
  }
}

export type AppLogger = (level: LogLevel, category: LogCategory, message: string, functionName?: string) => void;

/** Everything one loaded app registered through the core module. */
export class AppRegistry {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks: Record<HookName, HookCallback[]> = {
    appStart: [],
    appTerminate: [],
    preInvocation: [],
    postInvocation: [],
    log: [],
  };
  /** Shared by every hook of the app; `appLevelHookData` only by appStart/appTerminate (as in the worker). */
  readonly appHookData: Record<string, unknown> = {};
  readonly appLevelHookData: Record<string, unknown> = {};
  programmingModel: ProgrammingModel | undefined;
  currentEntryPoint: string | undefined;
  locked = false;

  constructor(readonly log: AppLogger) {}
}

interface CoreState {
  /** The app whose entry points are being loaded: registrations made now belong to it. */
  loading: AppRegistry | undefined;
  /** Started apps, newest last; hooks and logs from outside a load go to the newest. */
  readonly running: AppRegistry[];
  /** `@azure/functions` sets its model once per library instance, so a reused instance keeps the last one. */
  lastProgrammingModel: ProgrammingModel | undefined;
}

// On globalThis so that two copies of this file (e.g. vitest's and dist's) share one core module.
const stateKey = Symbol.for('customer-sync.local-functions-host.core');
const globals = globalThis as unknown as Record<symbol, CoreState | undefined>;
const state: CoreState = (globals[stateKey] ??= { loading: undefined, running: [], lastProgrammingModel: undefined });

function targetApp(): AppRegistry | undefined {
  return state.loading ?? state.running[state.running.length - 1];
}

function registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
  const app = state.loading;
  if (!app || app.locked) throw new Error('A function can only be registered during app startup.');
  const functionId = metadata.functionId || metadata.name;
  if (app.functions.has(functionId)) throw new Error(`A function with id "${functionId}" has already been registered.`);
  const bindingEntries = Object.entries(metadata.bindings);
  const trigger = bindingEntries.find(([, b]) => /trigger$/i.test(b.type ?? ''));
  if (!trigger) throw new Error(`Function "${metadata.name}" has no trigger binding.`);
  const entryPoint = app.currentEntryPoint;
  app.functions.set(functionId, {
    name: metadata.name,
    metadata: {
      name: metadata.name,
      functionId,
      bindings: metadata.bindings,
      // What the real host reads to create bindings; kept for fidelity and debugging.
      rawBindings: bindingEntries.map(([name, b]) => JSON.stringify({ ...b, name })),
      scriptFile: entryPoint ? path.basename(entryPoint) : 'unknown',
      directory: entryPoint ? path.dirname(entryPoint) : undefined,
      retryOptions: metadata.retryOptions,
    },
    callback,
    triggerName: trigger[0],
    trigger: trigger[1],
  });
  return new Disposable(() => {
    if (app.locked) throw new Error('A function can only be disposed during app startup.');
    app.functions.delete(functionId);
  });
}

function registerHook(hookName: string, callback: HookCallback): Disposable {
  const app = targetApp();
  if (!app) throw new Error(`Cannot register a "${hookName}" hook: no app is loaded.`);
  if (!(hookName in app.hooks)) {
    // The library turns a RangeError into "requires a newer host", matching the worker's behaviour.
    throw Object.assign(new RangeError(`Unrecognized hook "${hookName}"`), { isAzureFunctionsSystemError: true });
  }
  const hooks = app.hooks[hookName as HookName];
  hooks.push(callback);
  return new Disposable(() => {
    const i = hooks.indexOf(callback);
    if (i >= 0) hooks.splice(i, 1);
  });
}

const coreApi = {
  // Worker/host versions new enough for every feature the library gates on (streaming, log hooks).
  version: '3.10.1',
  hostVersion: '4.1037.0',
  registerFunction,
  registerHook,
  setProgrammingModel(model: ProgrammingModel): void {
    state.lastProgrammingModel = model;
    const app = state.loading;
    if (app) app.programmingModel = model;
  },
  getProgrammingModel(): ProgrammingModel | undefined {
    return targetApp()?.programmingModel ?? state.lastProgrammingModel;
  },
  log(level: LogLevel, category: LogCategory, message: string): void {
    const app = targetApp();
    if (app) app.log(level, category, message);
    else if (level === 'warning' || level === 'error' || level === 'critical') process.stderr.write(`${message}\n`);
  },
  Disposable,
};

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;
const moduleInternals = Module as unknown as { _load: ModuleLoad };
const hookKey = Symbol.for('customer-sync.local-functions-host.require-hook');

/** Makes `require('@azure/functions-core')` resolve to this module, for every loader in the process. */
export function installCoreModule(): void {
  const marked = moduleInternals as unknown as Record<symbol, boolean>;
  if (marked[hookKey]) return;
  const load = moduleInternals._load;
  moduleInternals._load = function (this: unknown, request: string, parent: unknown, isMain: boolean) {
    return request === '@azure/functions-core' ? coreApi : load.call(this, request, parent, isMain);
  };
  marked[hookKey] = true;
}

let loadQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs `load` with `app` as the target of registrations. Loads are serialized because ESM entry
 * points load asynchronously and registrations carry no app identity of their own.
 */
export function loadApp<T>(app: AppRegistry, load: () => Promise<T>): Promise<T> {
  const run = loadQueue.then(async () => {
    state.loading = app;
    try {
      const result = await load();
      app.programmingModel ??= state.lastProgrammingModel;
      return result;
    } finally {
      state.loading = undefined;
      app.locked = true;
    }
  });
  loadQueue = run.catch(() => undefined);
  return run;
}

export function markRunning(app: AppRegistry, running: boolean): void {
  const i = state.running.indexOf(app);
  if (i >= 0) state.running.splice(i, 1);
  if (running) state.running.push(app);
}
