// A local stand-in for the Azure Functions host + Node.js worker, for development and tests where
// Core Tools are unavailable. The app is loaded exactly as the worker loads it and never learns the
// difference: it registers through `@azure/functions`, which talks to the core module we provide.
//
// Console logging is deliberately quiet: host.json's `logging` section drives Application Insights in
// Azure, but locally only warnings, errors and startup lines are printed unless
// `AzureFunctionsJobHost__logging__logLevel__default` (e.g. `Information`) asks for more.
import fs from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { RetryMode, type RetryOptions } from '@azure/service-bus';
import { globSync } from 'tinyglobby';

import {
  getPath,
  isTruthySetting,
  logLevelRank,
  parseLogLevel,
  parseTimeSpan,
  readHostJson,
  resolveExpression,
  toNumber,
} from './config';
import {
  type AppLogger,
  AppRegistry,
  type BindingInfo,
  installCoreModule,
  type InvocationRequest,
  type InvocationResponse,
  loadApp,
  type LogLevel,
  markRunning,
  type RegisteredFunction,
} from './core';
import { createHttpServer, type HttpFunction, listen } from './http';
import { invokeFunction, type ResultObserver, Tracker } from './invoke';
import { parseSchedule } from './ncrontab';
import { Router } from './routes';
import { type ServiceBusFunction, type ServiceBusReceivers, startServiceBusReceivers } from './servicebus';
import { deadlines, Shutdown } from './shutdown';
import { type TimerFunction, TimerScheduler } from './timers';

export interface FunctionsHostOptions {
  /** Folder with package.json (whose `main` may be a glob, e.g. dist/functions/*.js) and host.json. */
  appRoot: string;
  /** Default 7071; 0 = a free port. */
  port?: number;
  /** App settings; applied to process.env before the app is loaded (the real host does the same). */
  settings?: Record<string, string>;
  log?: (line: string) => void;
}

export interface FunctionsHost {
  /** e.g. http://127.0.0.1:7071 */
  readonly url: string;
  readonly functions: readonly string[];
  /** Finishes in-flight work and stops; each step is bounded, so this ends within `closeWorstCaseMs`. */
  close(): Promise<void>;
  /** While close() runs: the steps it is waiting for. */
  readonly closingSteps: readonly string[];
}

export interface TimerFunctionInfo {
  readonly name: string;
  readonly schedule: string;
  readonly runOnStartup: boolean;
}

const timerInfo = new WeakMap<FunctionsHost, readonly TimerFunctionInfo[]>();

/** The timer functions a host schedules (for tests: e.g. to check a schedule resolved from settings). */
export function listTimerFunctions(host: FunctionsHost): readonly TimerFunctionInfo[] {
  return timerInfo.get(host) ?? [];
}

// What the worker reports to the host before the programming model adds its own.
const workerCapabilities: Record<string, string> = {
  RawHttpBodyBytes: 'true',
  RpcHttpTriggerMetadataRemoved: 'true',
  RpcHttpBodyOnly: 'true',
  IgnoreEmptyValuedRpcHttpHeaders: 'true',
  UseNullableValueDictionaryForHttp: 'true',
  WorkerStatus: 'true',
  TypedDataCollection: 'true',
  HandlesWorkerTerminateMessage: 'true',
};

const levelLabels: Record<LogLevel, string> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'crit',
  none: '',
};

function applySettings(settings: Record<string, string>): () => void {
  const previous = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(settings)) {
    previous.set(name, process.env[name]);
    process.env[name] = value;
  }
  return () => {
    for (const [name, value] of previous) {
      // Leave a value alone if someone (e.g. another host) changed it since.
      if (process.env[name] !== settings[name]) continue;
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

// The app's own modules (not node_modules) that its entry points pulled in, so a second start in the
// same process (tests) evaluates the app afresh, as a new worker process would. Packages stay shared:
// reloading them would only split class identities between the app and whoever else uses them.
const appModules = new Map<string, string[]>();

async function loadEntryPoints(appRoot: string, app: AppRegistry): Promise<void> {
  const packageJson = JSON.parse(fs.readFileSync(path.join(appRoot, 'package.json'), 'utf8')) as {
    main?: unknown;
    type?: unknown;
  };
  const main = packageJson.main;
  if (typeof main !== 'string' || main === '') throw new Error(`${appRoot}/package.json has no "main" entry point`);
  // `main` is a glob, as the worker reads it (with globby): files only, no dot files, node_modules skipped; and
  // sorted, so entry points load in the same order on every machine. A directory is not expanded into its files.
  const files = globSync(main, { cwd: appRoot, ignore: ['**/node_modules/**'], expandDirectories: false }).sort();
  if (files.length === 0) throw new Error(`no files match the entry point "${main}" in ${appRoot}`);

  const requireFromApp = createRequire(path.join(appRoot, 'package.json'));
  const cache = requireFromApp.cache;
  for (const id of appModules.get(appRoot) ?? []) delete cache[id];
  // A fresh @azure/functions per app: its setup options and programming model are per process in Azure.
  try {
    delete cache[requireFromApp.resolve('@azure/functions')];
  } catch {
    // not installed; the app will fail to load with a clearer error
  }
  const before = new Set(Object.keys(cache));

  try {
    for (const file of files) {
      const fullPath = path.join(appRoot, file);
      app.currentEntryPoint = fullPath;
      try {
        const esm = file.endsWith('.mjs') || (packageJson.type === 'module' && !file.endsWith('.cjs'));
        if (esm) await import(pathToFileURL(fullPath).href);
        else requireFromApp(fullPath);
      } catch (err) {
        throw new Error(`unable to load entry point "${file}": ${(err as Error).message}`, { cause: err });
      } finally {
        app.currentEntryPoint = undefined;
      }
    }
  } finally {
    const packages = `${path.sep}node_modules${path.sep}`;
    appModules.set(
      appRoot,
      Object.keys(cache).filter((id) => !before.has(id) && !id.includes(packages)),
    );
  }
}

interface Triggers {
  router: Router<HttpFunction>;
  http: { fn: RegisteredFunction; methods: string; route: string }[];
  timers: TimerFunction[];
  serviceBus: ServiceBusFunction[];
  /** Switched off with the `AzureWebJobs.<name>.Disabled` app setting, as in Azure. */
  disabled: string[];
}

function indexFunctions(
  app: AppRegistry,
  routePrefix: string,
  warn: (message: string, functionName: string) => void,
): Triggers {
  const env = process.env;
  const problems: string[] = [];
  const triggers: Triggers = { router: new Router(), http: [], timers: [], serviceBus: [], disabled: [] };

  for (const fn of app.functions.values()) {
    if (isTruthySetting(env[`AzureWebJobs.${fn.name}.Disabled`])) {
      triggers.disabled.push(fn.name);
      continue;
    }
    const fnProblems: string[] = [];
    const prop = (name: string): string | undefined => {
      const value = fn.trigger[name];
      return typeof value === 'string' ? resolveExpression(value, env, fnProblems) : undefined;
    };
    const type = (fn.trigger.type ?? '').toLowerCase();

    let httpOutput: string | undefined;
    for (const [name, binding] of Object.entries(fn.metadata.bindings) as [string, BindingInfo][]) {
      if (binding === fn.trigger) continue;
      if (type === 'httptrigger' && binding.direction === 'out' && binding.type?.toLowerCase() === 'http') {
        httpOutput ??= name;
      } else if (!(name === '$return' && type !== 'httptrigger')) {
        warn(`binding "${name}" (${binding.type ?? '?'}) is not supported locally and is ignored`, fn.name);
      }
    }

    if (type === 'httptrigger') {
      const route = (prop('route') ?? fn.name).replace(/^\/+|\/+$/g, '');
      const template = [routePrefix, route].filter((s) => s !== '').join('/');
      const methods = Array.isArray(fn.trigger.methods)
        ? new Set((fn.trigger.methods as unknown[]).map((m) => String(m).toUpperCase()))
        : null;
      triggers.router.add(template, { fn, methods, outputName: httpOutput }, (m) => warn(m, fn.name));
      triggers.http.push({ fn, methods: methods ? [...methods].join(',') : 'all', route: template });
    } else if (type === 'timertrigger') {
      const schedule = prop('schedule');
      try {
        if (schedule === undefined) throw new Error('no schedule');
        triggers.timers.push({
          fn,
          schedule: parseSchedule(schedule),
          runOnStartup: isTruthySetting(fn.trigger.runOnStartup),
        });
      } catch (err) {
        fnProblems.push((err as Error).message);
      }
    } else if (type === 'servicebustrigger') {
      const queueName = prop('queueName');
      const topicName = prop('topicName');
      const subscriptionName = prop('subscriptionName');
      const connection = prop('connection') ?? 'AzureWebJobsServiceBus';
      const connectionString = env[connection] ?? env[`AzureWebJobs${connection}`];
      if (!connectionString)
        fnProblems.push(`connection "${connection}" is not an app setting with a connection string`);
      if (!queueName && !(topicName && subscriptionName))
        fnProblems.push('needs queueName, or topicName and subscriptionName');
      if (isTruthySetting(fn.trigger.isSessionsEnabled))
        warn('sessions are not supported locally; receiving without a session', fn.name);
      if (connectionString) triggers.serviceBus.push({ fn, connectionString, queueName, topicName, subscriptionName });
    } else {
      warn(`${fn.trigger.type ?? 'unknown'} triggers are not supported locally; the function will not run`, fn.name);
    }
    if (fn.metadata.retryOptions) warn('retry policies are not applied locally', fn.name);
    problems.push(...fnProblems.map((p) => `${fn.name}: ${p}`));
  }
  if (problems.length > 0) throw new Error(`the app's bindings are invalid:\n  ${problems.join('\n  ')}`);
  return triggers;
}

/**
 * The Service Bus extension's `clientRetryOptions` (host.json) as the JavaScript SDK takes them, defaulting as
 * the extension does: exponential from 0.8 s up to a minute, 3 retries, a minute per try. (The JavaScript
 * SDK's own default waits a fixed 30 s between tries, which made a receiver come back half a minute after the
 * broker did, and a settle on a dropped link hang for 90 s.)
 */
export function clientRetryOptions(options: unknown): RetryOptions {
  const mode = getPath(options, 'mode');
  return {
    mode: typeof mode === 'string' && mode.toLowerCase() === 'fixed' ? RetryMode.Fixed : RetryMode.Exponential,
    retryDelayInMs: parseTimeSpan(getPath(options, 'delay')) ?? 800,
    maxRetryDelayInMs: parseTimeSpan(getPath(options, 'maxDelay')) ?? 60_000,
    maxRetries: toNumber(getPath(options, 'maxRetries')) ?? 3,
    timeoutInMs: parseTimeSpan(getPath(options, 'tryTimeout')) ?? 60_000,
  };
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const appRoot = path.resolve(options.appRoot);
  const sink = options.log ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const restoreSettings = applySettings(options.settings ?? {});
  const cleanup: (() => unknown)[] = [restoreSettings];

  try {
    const hostJson = readHostJson(appRoot, process.env);
    const threshold =
      logLevelRank[parseLogLevel(process.env.AzureFunctionsJobHost__logging__logLevel__default) ?? 'warning'];
    const write = (level: LogLevel, message: string, source: string): void =>
      sink(`${new Date().toISOString()} ${levelLabels[level]} [${source}] ${message}`);
    const hostLog = (level: LogLevel, message: string, source = 'host'): void => {
      if (logLevelRank[level] >= threshold) write(level, message, source);
    };

    let inLogHook = false;
    const appLog: AppLogger = (level, category, message, functionName) => {
      if (app.hooks.log.length > 0 && !inLogHook) {
        // Log hooks may rewrite level and message; the library's context writes back into this object.
        const ctx: Record<string, unknown> = { hookData: {}, level, message, category, invocationContext: undefined };
        inLogHook = true;
        try {
          for (const hook of app.hooks.log) void hook(ctx);
        } catch (err) {
          write('error', `log hook failed: ${(err as Error).message}`, 'host');
        } finally {
          inLogHook = false;
        }
        level = ctx.level as LogLevel;
        message = ctx.message as string;
      }
      hostLog(level, message, functionName ?? (category === 'system' ? 'worker' : 'app'));
    };

    const app = new AppRegistry(appLog);
    installCoreModule();
    await loadApp(app, () => loadEntryPoints(appRoot, app));
    markRunning(app, true);
    cleanup.push(() => markRunning(app, false));
    const model = app.programmingModel;
    if (!model) throw new Error('the app registered no programming model: does it use @azure/functions 4.x?');

    const appHookContext = () => ({ hookData: app.appLevelHookData, appHookData: app.appHookData });
    for (const hook of app.hooks.appStart) await hook({ ...appHookContext(), functionAppDirectory: appRoot });

    const capabilities = (await model.getCapabilities?.({ ...workerCapabilities })) ?? workerCapabilities;
    const streamUri = capabilities.HttpUri ? new URL(capabilities.HttpUri) : undefined;

    const routePrefixSetting = getPath(hostJson, 'extensions', 'http', 'routePrefix');
    const routePrefix = (typeof routePrefixSetting === 'string' ? routePrefixSetting : 'api').replace(/^\/+|\/+$/g, '');
    const triggers = indexFunctions(app, routePrefix, (m, fn) => hostLog('warning', m, fn));

    const tracker = new Tracker();
    const verbose = threshold <= logLevelRank.information;
    const invoke = (
      fn: RegisteredFunction,
      request: InvocationRequest,
      observe?: ResultObserver,
    ): Promise<InvocationResponse> =>
      tracker.run(async () => {
        const started = performance.now();
        const outcome = (status: string) =>
          `Executed (${status}, Id=${request.invocationId}, Duration=${Math.round(performance.now() - started)}ms)`;
        try {
          const response = await invokeFunction(app, fn, request, observe);
          if (verbose) write('information', outcome('Succeeded'), fn.name);
          return response;
        } catch (err) {
          hostLog('error', `${outcome('Failed')}: ${(err as Error)?.stack ?? String(err)}`, fn.name);
          throw err;
        }
      }, fn.name);

    let closing = false;
    const server: http.Server = createHttpServer({
      router: triggers.router,
      invoke,
      tracker,
      streamUri,
      onError: (m) => hostLog('error', m),
      isClosing: () => closing,
    });
    const port = await listen(server, options.port ?? 7071);
    const url = `http://127.0.0.1:${port}`;
    cleanup.push(() => server.close());

    const timers = new TimerScheduler(triggers.timers, invoke, hostLog);
    let serviceBus: ServiceBusReceivers | undefined;
    if (triggers.serviceBus.length > 0) {
      const sb = getPath(hostJson, 'extensions', 'serviceBus');
      serviceBus = startServiceBusReceivers(
        triggers.serviceBus,
        {
          maxConcurrentCalls: Math.max(
            1,
            toNumber(getPath(sb, 'maxConcurrentCalls') ?? getPath(sb, 'messageHandlerOptions', 'maxConcurrentCalls')) ??
              16,
          ),
          prefetchCount: Math.max(0, toNumber(getPath(sb, 'prefetchCount')) ?? 0),
          maxAutoLockRenewalDurationInMs:
            parseTimeSpan(
              getPath(sb, 'maxAutoLockRenewalDuration') ?? getPath(sb, 'messageHandlerOptions', 'maxAutoRenewDuration'),
            ) ?? 5 * 60_000,
          retryOptions: clientRetryOptions(getPath(sb, 'clientRetryOptions')),
        },
        invoke,
        hostLog,
      );
    }
    timers.start();

    sink(`Functions host listening on ${url} (${app.functions.size} functions, app ${appRoot})`);
    for (const h of triggers.http) sink(`  ${h.fn.name}: [${h.methods}] ${url}/${h.route}`);
    for (const t of triggers.timers) sink(`  ${t.fn.name}: timerTrigger (${t.schedule.expression})`);
    for (const s of triggers.serviceBus) {
      sink(`  ${s.fn.name}: serviceBusTrigger (${s.queueName ?? `${s.topicName}/${s.subscriptionName}`})`);
    }
    for (const name of triggers.disabled) sink(`  ${name}: disabled`);

    const shutdown = new Shutdown((message) => hostLog('warning', message));
    const terminateHooks = async () => {
      for (const hook of app.hooks.appTerminate) {
        try {
          await hook(appHookContext());
        } catch (err) {
          hostLog('error', `appTerminate hook failed: ${(err as Error).stack ?? String(err)}`);
        }
      }
    };
    let closed: Promise<void> | undefined;
    const host: FunctionsHost = {
      url,
      functions: Object.freeze([...app.functions.values()].map((f) => f.name)),
      get closingSteps() {
        return shutdown.waiting;
      },
      close() {
        closed ??= (async () => {
          closing = true;
          const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
          timers.stop();
          await Promise.all([
            serviceBus?.close(shutdown),
            shutdown.step(
              'in-flight invocations',
              tracker.idle(),
              deadlines.drain,
              () => `still running: ${tracker.running.join(', ')}`,
            ),
          ]);
          server.closeAllConnections();
          await shutdown.step('HTTP server', serverClosed, deadlines.httpServer);
          await shutdown.step('appTerminate hooks', terminateHooks(), deadlines.appTerminate);
          markRunning(app, false);
          restoreSettings();
        })();
        return closed;
      },
    };
    timerInfo.set(
      host,
      triggers.timers.map((t) => ({ name: t.fn.name, schedule: t.schedule.expression, runOnStartup: t.runOnStartup })),
    );
    return host;
  } catch (err) {
    for (const undo of cleanup.reverse()) undo();
    throw err;
  }
}
