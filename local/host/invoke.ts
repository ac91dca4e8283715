// One invocation, in the order the Node.js worker runs it: programming model arguments, preInvocation
// hooks, the handler, postInvocation hooks, then the model's response conversion. Going through the
// model (not calling handlers directly) keeps the library's own converters in charge of the data.
import type {
  AppRegistry,
  CoreInvocationContext,
  FunctionCallback,
  InvocationRequest,
  InvocationResponse,
  RegisteredFunction,
} from './core';

/** Sees the handler's final result before the model converts it (streaming HTTP needs to know). */
export type ResultObserver = (context: unknown, result: unknown) => void;

export async function invokeFunction(
  app: AppRegistry,
  fn: RegisteredFunction,
  request: InvocationRequest,
  observe?: ResultObserver,
): Promise<InvocationResponse> {
  const model = app.programmingModel;
  if (!model) throw new Error('The app did not set a programming model (is @azure/functions 4.x installed?)');
  const coreContext: CoreInvocationContext = {
    invocationId: request.invocationId,
    request,
    metadata: fn.metadata,
    state: undefined,
    log: (level, category, message) => app.log(level, category, message, fn.name),
  };
  const invocationModel = await model.getInvocationModel(coreContext);
  const args = await invocationModel.getArguments();
  const context = args.context;
  let inputs = args.inputs;
  let callback: FunctionCallback = fn.callback;
  const hookData: Record<string, unknown> = {};

  if (app.hooks.preInvocation.length > 0) {
    const pre = {
      hookData,
      appHookData: app.appHookData,
      invocationContext: context,
      inputs,
      functionCallback: callback,
    };
    coreContext.state = 'preInvocationHooks';
    try {
      for (const hook of app.hooks.preInvocation) await hook(pre);
    } finally {
      coreContext.state = undefined;
    }
    // The library's hook context writes changes back into this object.
    inputs = pre.inputs;
    callback = pre.functionCallback;
  }

  let result: unknown = null;
  let error: unknown = null;
  coreContext.state = 'invocation';
  try {
    result = await invocationModel.invokeFunction(context, inputs, callback);
  } catch (err) {
    error = err ?? new Error('The function threw a nullish value');
  } finally {
    coreContext.state = undefined;
  }

  if (app.hooks.postInvocation.length > 0) {
    const post = { hookData, appHookData: app.appHookData, invocationContext: context, inputs, result, error };
    coreContext.state = 'postInvocationHooks';
    try {
      for (const hook of app.hooks.postInvocation) await hook(post);
    } finally {
      coreContext.state = undefined;
    }
    result = post.result;
    error = post.error;
  }

  if (error !== null && error !== undefined) throw error;
  observe?.(context, result);
  return invocationModel.getResponse(context, result);
}

/** Counts work in progress so shutdown can wait for it, and name what it would leave behind. */
export class Tracker {
  #active = 0;
  readonly #running = new Map<string, number>();
  #waiters: (() => void)[] = [];

  get active(): number {
    return this.#active;
  }

  /** What is in progress, each name once. */
  get running(): string[] {
    return [...this.#running.keys()];
  }

  async run<T>(work: () => Promise<T>, name: string): Promise<T> {
    this.#active++;
    this.#running.set(name, (this.#running.get(name) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.#running.get(name) ?? 1) - 1;
      if (left === 0) this.#running.delete(name);
      else this.#running.set(name, left);
      if (--this.#active === 0) for (const resolve of this.#waiters.splice(0)) resolve();
    }
  }

  idle(): Promise<void> {
    return this.#active === 0 ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }
}
