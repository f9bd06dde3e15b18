import type { Env, ProblemSink } from '../read.js';
import type { Values } from '../variables.js';

/** What every rule module gets: the parsed values and where to report problems and warnings. */
export interface RuleContext {
  readonly values: Values;
  /** The merged environment (for "was it set?" questions only; values come from `values`). */
  readonly env: Env;
  readonly production: boolean;
  readonly problem: ProblemSink;
  /** A loud startup warning: unsafe but allowed. */
  readonly warn: (message: string) => void;
  /** The path under which the frontend being loaded is served (`/` for a host frontend). */
  readonly pathPrefix: string;
}
