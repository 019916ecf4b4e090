import assert from "node:assert/strict";
import { CARTPOLE, CartPole, cartPoleDynamics, cartPoleFailed } from "../../data/envs/cartpole.ts";

/** Runs a policy (obs row -> action) on every episode until all end; returns the returns. */
function rollout(env: CartPole, policy: (o: Float32Array) => number): number[] {
  let obs = env.reset();
  while (!env.allDone) {
    const a = Array.from({ length: env.n }, (_, i) => policy(obs.subarray(4 * i, 4 * i + 4)));
    obs = env.step(a).obs;
  }
  return env.returns();
}

Deno.test("cartpole: same seed gives identical episodes, another seed different starts", () => {
  const a = new CartPole({ n: 5, seed: 3 }), b = new CartPole({ n: 5, seed: 3 });
  const c = new CartPole({ n: 5, seed: 4 });
  assert.deepEqual(a.observation(), b.observation());
  assert.notDeepEqual(a.observation(), c.observation());
  const alternate = (o: Float32Array) => (o[2] > 0 ? 1 : 0);
  assert.deepEqual(rollout(a, alternate), rollout(b, alternate));
  assert.deepEqual(a.state, b.state);
});

Deno.test("cartpole: initial states are uniform in [-0.05, 0.05]", () => {
  const env = new CartPole({ n: 200, seed: 1 });
  const s = env.observation();
  assert.ok(s.every((v) => Math.abs(v) <= 0.05));
  assert.ok(Math.max(...s) > 0.04 && Math.min(...s) < -0.04);
});

Deno.test("cartpole: pushing right from rest moves the cart right and tips the pole left", () => {
  // From rest: temp = F / M, thetaAcc = -temp / (l (4/3 - m / M)), xAcc = temp - m l thetaAcc / M.
  const M = CARTPOLE.massCart + CARTPOLE.massPole;
  const temp = CARTPOLE.forceMag / M;
  const thetaAcc = -temp / (CARTPOLE.length * (4 / 3 - CARTPOLE.massPole / M));
  const xAcc = temp - (CARTPOLE.massPole * CARTPOLE.length * thetaAcc) / M;
  const [x, xDot, theta, thetaDot] = cartPoleDynamics([0, 0, 0, 0], 1);
  assert.equal(x, 0);
  assert.equal(theta, 0);
  assert.ok(Math.abs(xDot - CARTPOLE.tau * xAcc) < 1e-12 && xDot > 0);
  assert.ok(Math.abs(thetaDot - CARTPOLE.tau * thetaAcc) < 1e-12 && thetaDot < 0);
  assert.ok(Math.abs(xDot - 0.1951219512195122) < 1e-9); // 0.02 * 9.7561 (Gym's value)
  const left = cartPoleDynamics([0, 0, 0, 0], 0);
  assert.ok(Math.abs(left[1] + xDot) < 1e-12 && Math.abs(left[3] + thetaDot) < 1e-12);
});

Deno.test("cartpole: episodes end past 12 degrees or 2.4 m, and are cut at maxSteps", () => {
  assert.ok(cartPoleFailed([0, 0, 0.21, 0]) && cartPoleFailed([-2.41, 0, 0, 0]));
  assert.ok(!cartPoleFailed([2.3, 0, 0.2, 0]));
  const env = new CartPole({ n: 3, maxSteps: 30, seed: 0 });
  const balance = (o: Float32Array) => (o[2] + 0.5 * o[3] > 0 ? 1 : 0);
  assert.deepEqual(rollout(env, balance), [30, 30, 30]);
  const always = new CartPole({ n: 3, maxSteps: 500, seed: 0 });
  const r = rollout(always, () => 1);
  assert.ok(r.every((v) => v > 5 && v < 30), `always-right should fall fast, got ${r}`);
});

Deno.test("cartpole: an angle controller balances 200 steps; ended episodes stay frozen", () => {
  const env = new CartPole({ n: 8, seed: 5 });
  const good = rollout(env, (o) => (o[2] + 0.5 * o[3] > 0 ? 1 : 0));
  assert.deepEqual(good, new Array(8).fill(200));
  const frozen = Float64Array.from(env.state);
  const s = env.step(new Array(8).fill(1));
  assert.deepEqual(Array.from(s.reward), new Array(8).fill(0));
  assert.deepEqual(env.state, frozen);
});

Deno.test("cartpole: bad options and actions are clear errors", () => {
  assert.throws(() => new CartPole({ n: 0 }), /n must be >= 1/);
  assert.throws(() => new CartPole({ maxSteps: 1.5 }), /maxSteps must be a positive integer/);
  const env = new CartPole({ n: 2 });
  assert.throws(() => env.step([1]), /expected 2 actions, got 1/);
  assert.throws(() => env.step([1, 2]), /action 1 is 2, not 0 or 1/);
});
