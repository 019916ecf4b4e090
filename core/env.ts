/**
 * Permission-aware reads of the environment for the backends: they never prompt, and a
 * missing permission reads as unset (so the defaults apply).
 */

/** Whether `desc` is granted already (never prompts). */
export function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/** $name where env access to it is granted, else undefined. */
export function envVar(name: string): string | undefined {
  return granted({ name: "env", variable: name }) ? Deno.env.get(name) : undefined;
}
