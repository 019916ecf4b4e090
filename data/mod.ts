/**
 * Datasets for the lab, as plain typed arrays (no Tensor dependency): the shipped 8x8 digits,
 * seeded synthetic generators, and split / few-shot / batching utilities.
 *
 * @module
 */

export * from "./dataset.ts";
export * from "./digits.ts";
export * from "./loader.ts";
export * from "./synthetic/shapes.ts";
export * from "./synthetic/modular.ts";
export * from "./synthetic/regression.ts";
export * from "./synthetic/sequences.ts";
export * from "./synthetic/teacher.ts";
export * from "./synthetic/toy2d.ts";
