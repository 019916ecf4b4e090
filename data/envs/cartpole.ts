/**
 * Cart-pole balancing (Barto, Sutton & Anderson 1983), with the dynamics, constants and episode
 * rules of Gym's classic-control `CartPole` (Euler integration, tau = 0.02 s): a pole hinged on
 * a cart that is pushed left or right with a force of 10 N; reward 1 per step; an episode ends
 * when the pole leans more than 12 degrees, the cart leaves [-2.4, 2.4], or after `maxSteps`
 * steps (200 as CartPole-v0, 500 as v1).
 *
 * `CartPole` runs `n` independent episodes side by side on plain typed arrays (no tensors), so a
 * whole population of policies can be evaluated in one loop. Initial states are drawn from the
 * seeded host Generator: same seed, same episodes, bit for bit.
 */
import { Generator } from "../../core/random.ts";

/** Gym's CartPole constants. */
export const CARTPOLE = {
  gravity: 9.8,
  massCart: 1.0,
  massPole: 0.1,
  /** Half the pole's length (m). */
  length: 0.5,
  forceMag: 10.0,
  /** Seconds between state updates. */
  tau: 0.02,
  /** 12 degrees in radians. */
  thetaThreshold: (12 * 2 * Math.PI) / 360,
  xThreshold: 2.4,
} as const;

/** Observation size: [x, x_dot, theta, theta_dot]. */
export const CARTPOLE_OBS = 4;
/** Number of actions: 0 pushes left, 1 pushes right. */
export const CARTPOLE_ACTIONS = 2;

/**
 * One Euler step of the dynamics from `s` = [x, x_dot, theta, theta_dot] under `action` (0 or
 * 1); returns the next state (Gym's equations, theta positive clockwise).
 */
export function cartPoleDynamics(s: ArrayLike<number>, action: number): [
  number,
  number,
  number,
  number,
] {
  const { gravity, massCart, massPole, length, forceMag, tau } = CARTPOLE;
  const totalMass = massCart + massPole;
  const poleMassLength = massPole * length;
  const [x, xDot, theta, thetaDot] = [s[0], s[1], s[2], s[3]];
  const force = action === 1 ? forceMag : -forceMag;
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const temp = (force + poleMassLength * thetaDot * thetaDot * sin) / totalMass;
  const thetaAcc = (gravity * sin - cos * temp) /
    (length * (4 / 3 - (massPole * cos * cos) / totalMass));
  const xAcc = temp - (poleMassLength * thetaAcc * cos) / totalMass;
  return [x + tau * xDot, xDot + tau * xAcc, theta + tau * thetaDot, thetaDot + tau * thetaAcc];
}

/** Whether a state is outside the allowed region (the episode terminates). */
export function cartPoleFailed(s: ArrayLike<number>): boolean {
  return Math.abs(s[0]) > CARTPOLE.xThreshold || Math.abs(s[2]) > CARTPOLE.thetaThreshold;
}

export interface CartPoleOptions {
  /** Number of episodes run side by side (default 1). */
  n?: number;
  /** Steps after which an episode is truncated (default 200, CartPole-v0). */
  maxSteps?: number;
  /** Seed of the initial states (default 0). */
  seed?: number;
}

/** What `step` returns: per-episode observation, reward and done flag after the step. */
export interface CartPoleStep {
  /** [n, 4] row-major float32. */
  obs: Float32Array;
  /** [n]: 1 for episodes that were running before this step, else 0. */
  reward: Float32Array;
  /** [n]: 1 once the episode has ended (failed or truncated). */
  done: Uint8Array;
}

/** `n` cart-pole episodes stepped together; see the module comment. */
export class CartPole {
  readonly n: number;
  readonly maxSteps: number;
  /** [n, 4] float64 states. */
  readonly state: Float64Array;
  /** [n]: 1 once the episode has ended. */
  readonly done: Uint8Array;
  /** [n]: steps taken (the undiscounted return so far). */
  readonly steps: Int32Array;
  readonly #gen: Generator;

  constructor(o: CartPoleOptions = {}) {
    const n = o.n ?? 1, maxSteps = o.maxSteps ?? 200, seed = o.seed ?? 0;
    if (!Number.isInteger(n) || n < 1) throw new Error(`CartPole: n must be >= 1, got ${n}`);
    if (!Number.isInteger(maxSteps) || maxSteps < 1) {
      throw new Error(`CartPole: maxSteps must be a positive integer, got ${maxSteps}`);
    }
    this.n = n;
    this.maxSteps = maxSteps;
    this.#gen = new Generator(seed);
    this.state = new Float64Array(n * CARTPOLE_OBS);
    this.done = new Uint8Array(n);
    this.steps = new Int32Array(n);
    this.reset();
  }

  /** Starts new episodes: every state variable uniform in [-0.05, 0.05]. Returns obs [n, 4]. */
  reset(): Float32Array {
    for (let i = 0; i < this.state.length; i++) this.state[i] = this.#gen.uniform(-0.05, 0.05);
    this.done.fill(0);
    this.steps.fill(0);
    return this.observation();
  }

  /** The current states as float32 [n, 4]. */
  observation(): Float32Array {
    return Float32Array.from(this.state);
  }

  /** True when every episode has ended. */
  get allDone(): boolean {
    return this.done.every((v) => v === 1);
  }

  /** The returns so far (steps survived) as numbers. */
  returns(): number[] {
    return Array.from(this.steps);
  }

  /** Applies one action (0 or 1) per episode; ended episodes stay frozen with reward 0. */
  step(actions: ArrayLike<number>): CartPoleStep {
    if (actions.length !== this.n) {
      throw new Error(`CartPole.step: expected ${this.n} actions, got ${actions.length}`);
    }
    const reward = new Float32Array(this.n);
    for (let i = 0; i < this.n; i++) {
      if (this.done[i]) continue;
      const a = actions[i];
      if (a !== 0 && a !== 1) throw new Error(`CartPole.step: action ${i} is ${a}, not 0 or 1`);
      const o = i * CARTPOLE_OBS;
      const next = cartPoleDynamics(this.state.subarray(o, o + CARTPOLE_OBS), a);
      this.state.set(next, o);
      reward[i] = 1;
      this.steps[i]++;
      if (cartPoleFailed(next) || this.steps[i] >= this.maxSteps) this.done[i] = 1;
    }
    return { obs: this.observation(), reward, done: Uint8Array.from(this.done) };
  }
}
