/**
 * How a target function crosses over to a worker or child process, parent side.
 *
 * A function cannot be sent, so the child finds it again: in the module that exports it (as
 * Python's spawn re-imports `__main__`), or, for a function that uses nothing from outside its
 * body, by evaluating its source text.
 *
 * Rules this file keeps:
 * - Everything that can be checked in the parent is checked here, so that a target that cannot be
 *   found again fails at the constructor, with the fix, rather than in the child.
 * - The analysis errs towards accepting: a function it wrongly accepts fails in the child with the
 *   name it missed; one it wrongly refused could never run.
 *
 * @module
 */
// A full specifier: the library must load from a project whose import map does not list acorn
// (imported by path, or over https), and the npm build turns it into the package name.
import { parse } from "npm:acorn@^8.14.0";
import type { TargetSpec } from "./_protocol.ts";
import { checkModule, describeValue } from "./_checks.ts";
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { mainModuleUrl } from "./_platform.deno.ts";
import { parentMainModule } from "./_process_context.ts";

/** Where a target is looked up, as given by the caller. */
export interface TargetLookupOptions {
  /** A module URL or path that exports the target; defaults to the main module. */
  module?: string | URL;
}

/**
 * Turns a target into a {@linkcode TargetSpec}, checking as much as can be checked in the parent.
 *
 * @param target The function to run.
 * @param options Where to look the function up.
 * @param what The API that takes the target, for error messages (`"Thread"`, `"Pool.map()"`).
 * @throws {TypeError} When the target is not a function, when `module` does not exist, or when the
 * function is neither exported nor self-contained.
 */
export function describeTarget(
  target: unknown,
  options: TargetLookupOptions,
  what: string,
): TargetSpec {
  if (typeof target !== "function") {
    throw new TypeError(
      `${what} 'target' must be a function: received ${describeValue(target)}`,
    );
  }
  const source = Function.prototype.toString.call(target);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(
      `${what} 'target' must be a function written in JavaScript or TypeScript: received native function '${target.name}'`,
    );
  }
  const name = target.name;
  const analysis = analyzeSource(source, name);
  let module: string | undefined;
  let importRequired = true;
  if (options.module !== undefined) {
    module = toModuleUrl(checkModule(options.module, what)!);
    const text = readModuleText(module);
    if (text === null) {
      throw new TypeError(
        `${what} 'module' does not exist: '${String(options.module)}'${
          relativeHint(options.module)
        }; pass a URL or path of a module that exports the target`,
      );
    }
    if (
      text !== undefined && exportsName(text, name) === false && analysis.evalText === undefined
    ) {
      throw new TypeError(
        `${what} 'module' does not export the target '${
          name || "(anonymous)"
        }': '${module}'; export it from that module${
          commonJsHint(text, name)
        }, or pass the module that does`,
      );
    }
  } else {
    // In a child the runtime's main module is the child's entry; the program's is the parent's.
    module = parentMainModule() ?? mainModuleUrl();
    const text = module === undefined ? undefined : readModuleText(module);
    // A main module that is no file (`deno eval`, a documentation example) cannot be imported.
    if (text === null) module = undefined;
    const exported = typeof text === "string" ? exportsName(text, name) : undefined;
    if ((exported === false || module === undefined) && analysis.evalText === undefined) {
      throw new TypeError(
        `${what} target ${name ? `'${name}' ` : ""}is not exported from the main module${
          module ? ` '${module}'` : ""
        } and uses names from outside its body (${
          analysis.freeNames.map((n) => `'${n}'`).join(", ")
        }): export it from its module${
          typeof text === "string" ? commonJsHint(text, name) : ""
        } (and pass that module as 'module' if it is not the main module), or make it self-contained`,
      );
    }
    if (exported === false) module = undefined;
    importRequired = exported === true;
  }
  return { module, importRequired, name, source, evalText: analysis.evalText };
}

/**
 * Tells from a module's source text whether it exports `name`: true, false, or undefined when the
 * text cannot tell (an `export *` may re-export it).
 */
export function exportsName(text: string, name: string): boolean | undefined {
  if (
    !name || !/^[\p{L}\p{Nl}$_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}$_\u200c\u200d]*$/u.test(name)
  ) {
    return /\bexport\s+default\b/.test(text) ? undefined : false;
  }
  const code = stripComments(text);
  const n = name.replace(/\$/g, "\\$");
  const patterns = [
    new RegExp(`\\bexport\\s+(?:declare\\s+)?(?:async\\s+)?function\\s*\\*?\\s*${n}(?![\\w$])`),
    new RegExp(`\\bexport\\s+(?:declare\\s+)?(?:const|let|var)\\s+${n}(?![\\w$])`),
    new RegExp(
      `\\bexport\\s+(?:declare\\s+)?(?:const|let|var)\\s*[{[][^=]*(?<![\\w$])${n}(?![\\w$])`,
    ),
    new RegExp(`\\bexport\\s*(?:type\\s*)?\\{[^}]*(?<![\\w$])${n}(?![\\w$])[^}]*\\}`),
    new RegExp(`\\bexport\\s+default\\s+(?:async\\s+)?function\\s*\\*?\\s*${n}(?![\\w$])`),
    new RegExp(`\\bexport\\s+(?:default\\s+)?(?:abstract\\s+)?class\\s+${n}(?![\\w$])`),
    // CommonJS, as Node's import() of it sees it: `exports.f = f`, `module.exports = { f }`, or
    // `module.exports = f` (the module's default export).
    new RegExp(`\\b(?:module\\.)?exports\\s*(?:\\.\\s*${n}|\\[\\s*(["'])${n}\\1\\s*\\])\\s*=`),
    new RegExp(`\\bmodule\\.exports\\s*=\\s*\\{[^}]*(?<![\\w$.])${n}(?![\\w$])`),
    new RegExp(`\\bmodule\\.exports\\s*=\\s*${n}\\s*(?:;|$)`, "m"),
  ];
  if (patterns.some((pattern) => pattern.test(code))) return true;
  if (/\bexport\s*\*/.test(code) || /\bexport\s+default\b/.test(code)) return undefined;
  return false;
}

/** For a CommonJS module, how to export `name` there, since `export` is ES module syntax. */
function commonJsHint(text: string, name: string): string {
  if (!/\bmodule\.exports\b|\bexports\.[\w$]+\s*=|\brequire\s*\(/.test(stripComments(text))) {
    return "";
  }
  const id = name || "target";
  return ` (in CommonJS: module.exports = { ${id} }, or exports.${id} = ${id})`;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:\\])\/\/.*$/gm, "$1");
}

interface SourceAnalysis {
  /** An expression that evaluates to the function, when it is self-contained. */
  evalText?: string;
  /** Names the function uses that it neither declares nor finds among the globals. */
  freeNames: string[];
}

/** Parses a function's source and finds the names it takes from outside its body. */
export function analyzeSource(source: string, name: string): SourceAnalysis {
  // A method's source (`run(x) { … }`) is not an expression on its own; in an object literal it is.
  const candidates = [
    { text: `(${source})`, evalText: `(${source})` },
    { text: `({${source}})`, evalText: `({${source}})[${JSON.stringify(name)}]` },
  ];
  for (const candidate of candidates) {
    let program: AstNode;
    try {
      program = parse(candidate.text, { ecmaVersion: "latest" }) as unknown as AstNode;
    } catch {
      continue;
    }
    // One expression statement, or the text held more than the function.
    const body = program.body as AstNode[];
    if (body.length !== 1 || body[0].type !== "ExpressionStatement") continue;
    const node = body[0].expression as AstNode;
    const freeNames = findFreeNames(node);
    return { evalText: freeNames.length === 0 ? candidate.evalText : undefined, freeNames };
  }
  return { freeNames: ["(source that could not be parsed)"] };
}

interface AstNode {
  type: string;
  [key: string]: unknown;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as AstNode).type === "string";
}

// `arguments` is not here: an arrow function takes it from the function around it, so it is free
// unless the target holds a function of its own (see `declare`).
const implicitNames = new Set(["undefined", "NaN", "Infinity", "globalThis"]);

/** Where each kind of node declares names: the keys that hold its binding patterns. */
const bindingKeys: Record<string, readonly string[]> = {
  FunctionDeclaration: ["id", "params"],
  FunctionExpression: ["id", "params"],
  ArrowFunctionExpression: ["params"],
  ClassDeclaration: ["id"],
  ClassExpression: ["id"],
  VariableDeclarator: ["id"],
  CatchClause: ["param"],
};

/**
 * Collects identifiers that are read or written but declared nowhere in the function. Scopes are
 * flattened: a name declared anywhere inside counts as declared everywhere, which errs towards
 * accepting a function rather than refusing a correct one.
 */
function findFreeNames(root: AstNode): string[] {
  const declared = new Set<string>();
  const bindingNodes = new Set<AstNode>();
  const referenced: string[] = [];

  const bindPattern = (pattern: unknown): void => {
    if (!isNode(pattern)) return;
    switch (pattern.type) {
      case "Identifier":
        declared.add(pattern.name as string);
        bindingNodes.add(pattern);
        break;
      case "ObjectPattern":
        for (const property of pattern.properties as AstNode[]) {
          bindPattern(property.type === "RestElement" ? property.argument : property.value);
        }
        break;
      case "ArrayPattern":
        for (const element of pattern.elements as unknown[]) bindPattern(element);
        break;
      case "RestElement":
        bindPattern(pattern.argument);
        break;
      case "AssignmentPattern":
        bindPattern(pattern.left);
        break;
    }
  };

  const declare = (node: AstNode): void => {
    // An arrow function has no `arguments` of its own: it reads those of the function around it.
    if (node.type === "FunctionDeclaration" || node.type === "FunctionExpression") {
      declared.add("arguments");
    }
    for (const key of bindingKeys[node.type] ?? []) {
      const value = node[key];
      for (const pattern of Array.isArray(value) ? value : [value]) bindPattern(pattern);
    }
  };

  const visit = (node: AstNode, parent: AstNode | undefined, key: string): void => {
    declare(node);
    if (node.type === "Identifier" && !bindingNodes.has(node)) {
      if (!isPropertyName(parent, key, node)) referenced.push(node.name as string);
    }
    for (const [childKey, value] of Object.entries(node)) {
      if (Array.isArray(value)) {
        for (const item of value) if (isNode(item)) visit(item, node, childKey);
      } else if (isNode(value)) {
        visit(value, node, childKey);
      }
    }
  };
  visit(root, undefined, "");

  const free = new Set<string>();
  for (const name of referenced) {
    if (declared.has(name) || implicitNames.has(name) || name in globalThis) continue;
    free.add(name);
  }
  return [...free];
}

/** True where an identifier is a property or label name rather than a variable. */
function isPropertyName(parent: AstNode | undefined, key: string, node: AstNode): boolean {
  if (!parent) return false;
  switch (parent.type) {
    case "MemberExpression":
      return key === "property" && !parent.computed;
    case "Property":
    case "MethodDefinition":
    case "PropertyDefinition":
      return key === "key" && !parent.computed && !(parent.shorthand && parent.value === node);
    case "LabeledStatement":
    case "BreakStatement":
    case "ContinueStatement":
      return key === "label";
    case "MetaProperty":
      return true;
  }
  return false;
}

/** Turns a module URL or a path (relative to the working directory) into a URL string. */
export function toModuleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  // A scheme of two letters or more; a single letter is a Windows drive.
  if (/^[a-z][a-z0-9+.-]+:/i.test(module)) return new URL(module).href;
  return pathToFileURL(resolve(module)).href;
}

/**
 * For a relative path: what it was resolved against (the working directory, not the file that
 * wrote it) and the URL form that resolves against that file instead.
 */
function relativeHint(module: string | URL | undefined): string {
  if (typeof module !== "string" || /^[a-z][a-z0-9+.-]+:/i.test(module) || isAbsolute(module)) {
    return "";
  }
  return ` (resolved against the working directory '${resolve(".")}' to '${
    toModuleUrl(module)
  }'; to name a file beside the calling module, pass new URL(${
    JSON.stringify(module)
  }, import.meta.url))`;
}

/**
 * Reads a local module's source text: null when the file does not exist, undefined when it cannot
 * be read here (a remote URL, or no read permission).
 */
export function readModuleText(url: string): string | null | undefined {
  if (!url.startsWith("file:")) return undefined;
  try {
    return readFileSync(fileURLToPath(url), "utf8");
  } catch (error) {
    return (error as { code?: string }).code === "ENOENT" ? null : undefined;
  }
}
