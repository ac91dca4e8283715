/**
 * The part of OData `$filter` the service needs, parsed into a tree once per request and evaluated per row.
 * Strict on purpose: anything outside this subset is a 400 naming what was not understood, so a query that
 * would behave differently against real Dataverse fails here instead of quietly matching the wrong rows.
 *
 * Supported: `col eq|ne|gt|ge|lt|le <literal or column>`, `and`, `or`, `not`, parentheses, and the functions
 * `contains`, `startswith`, `endswith`. Literals: 'text' (with '' for a quote), numbers, true, false, null,
 * unquoted GUIDs and unquoted datetimes (2024-05-01T00:00:00Z). Semantics follow "Filter rows using OData": string comparisons ignore case, and a comparison
 * with a null column is unknown (SQL's three-valued logic), so `name ne 'x'` does not return rows without a name;
 * only `eq null` / `ne null` test for null.
 */
import { columnOf, type ColumnValue, isColumnName, type Row } from './store';

type Comparison = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';
type StringFunction = 'contains' | 'startswith' | 'endswith';
/** A datetime literal is kept as a Date, and compared with a text column as the instant that text names. */
type Value = ColumnValue | Date;
type Operand = { kind: 'column'; name: string } | { kind: 'literal'; value: Value };

export type FilterExpression =
  | { kind: 'and' | 'or'; left: FilterExpression; right: FilterExpression }
  | { kind: 'not'; operand: FilterExpression }
  | { kind: 'compare'; op: Comparison; left: Operand; right: Operand }
  | { kind: 'function'; name: StringFunction; column: string; value: string };

export class FilterSyntaxError extends Error {}

const COMPARISONS = new Set<string>(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
const FUNCTIONS = new Set<string>(['contains', 'startswith', 'endswith']);
/** Nesting deeper than this is refused rather than risking the parser's stack on a hostile query. */
const MAX_DEPTH = 64;
const MAX_LENGTH = 32_768;

type Token =
  | { kind: 'string'; value: string; at: number }
  | { kind: 'number'; value: number; at: number }
  | { kind: 'datetime'; value: Date; at: number }
  | { kind: 'guid'; value: string; at: number }
  | { kind: 'word'; value: string; at: number }
  | { kind: '(' | ')' | ','; at: number };

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/;
const NUMBER = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/;
/** OData's unquoted Edm.DateTimeOffset, e.g. modifiedon ge 2024-05-01T00:00:00Z. */
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})/;
const WORD = /^[A-Za-z_][A-Za-z0-9_.]*/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const rest = text.slice(at);
    const char = text[at]!;
    if (/\s/.test(char)) {
      at++;
    } else if (char === '(' || char === ')' || char === ',') {
      tokens.push({ kind: char, at });
      at++;
    } else if (char === "'") {
      let value = '';
      let end = at + 1;
      for (;;) {
        if (end >= text.length) {
          // Dataverse's own wording for the most common mistake, an unescaped quote.
          throw new FilterSyntaxError(`There is an unterminated literal at position ${at} in '${text}'.`);
        }
        if (text[end] === "'") {
          if (text[end + 1] === "'") {
            value += "'";
            end += 2;
            continue;
          }
          break;
        }
        value += text[end];
        end++;
      }
      tokens.push({ kind: 'string', value, at });
      at = end + 1;
    } else {
      // A GUID can start with digits or letters, so it is tried before numbers and words.
      const guid = GUID.exec(rest);
      const datetime = DATETIME.exec(rest);
      const number = NUMBER.exec(rest);
      const word = WORD.exec(rest);
      if (guid && !/[0-9A-Za-z_-]/.test(rest[guid[0].length] ?? '')) {
        tokens.push({ kind: 'guid', value: guid[0].toLowerCase(), at });
        at += guid[0].length;
      } else if (datetime && !Number.isNaN(Date.parse(datetime[0]))) {
        tokens.push({ kind: 'datetime', value: new Date(datetime[0]), at });
        at += datetime[0].length;
      } else if (number && !/[A-Za-z_]/.test(rest[number[0].length] ?? '')) {
        tokens.push({ kind: 'number', value: Number(number[0]), at });
        at += number[0].length;
      } else if (word) {
        // Said here, before the arguments (Dataverse functions take name=value pairs) fail to tokenize.
        if (/^\s*\(/.test(rest.slice(word[0].length)) && !FUNCTIONS.has(word[0]) && word[0] !== 'not') {
          throw new FilterSyntaxError(
            `The function '${word[0]}' at position ${at} is not supported by the development Dataverse; ` +
              'only contains, startswith and endswith.',
          );
        }
        tokens.push({ kind: 'word', value: word[0], at });
        at += word[0].length;
      } else {
        throw new FilterSyntaxError(`Syntax error at position ${at} in '${text}': unexpected '${char}'.`);
      }
    }
  }
  return tokens;
}

/** Parses a `$filter` value; throws FilterSyntaxError with a message fit for the client. */
export function parseFilter(text: string): FilterExpression {
  if (text.length > MAX_LENGTH) throw new FilterSyntaxError(`$filter is longer than ${MAX_LENGTH} characters.`);
  const tokens = tokenize(text);
  let position = 0;
  const peek = () => tokens[position];
  const describe = (token: Token | undefined) =>
    token === undefined
      ? 'the end of the expression'
      : `'${'value' in token ? String(token.value) : token.kind}' at position ${token.at}`;
  const fail = (expected: string): never => {
    throw new FilterSyntaxError(`Expected ${expected} but found ${describe(peek())} in '${text}'.`);
  };
  const isWord = (value: string) => {
    const token = peek();
    return token?.kind === 'word' && token.value === value;
  };
  const expect = (kind: '(' | ')' | ',') => {
    if (peek()?.kind !== kind) fail(`'${kind}'`);
    position++;
  };

  const columnName = (token: Token & { kind: 'word' }): string => {
    // Dataverse logical names are lower case; a navigation path (a/b) or a qualified function is not supported.
    if (!isColumnName(token.value)) {
      throw new FilterSyntaxError(
        `'${token.value}' at position ${token.at} is not a column name the development Dataverse supports ` +
          '(lower-case letters, digits and _).',
      );
    }
    return token.value;
  };

  const operand = (): Operand => {
    const token = peek();
    if (token === undefined) return fail('a column or a value');
    position++;
    switch (token.kind) {
      case 'string':
        return { kind: 'literal', value: token.value };
      case 'number':
        return { kind: 'literal', value: token.value };
      case 'guid':
        return { kind: 'literal', value: token.value };
      case 'datetime':
        return { kind: 'literal', value: token.value };
      case 'word':
        if (token.value === 'null') return { kind: 'literal', value: null };
        if (token.value === 'true' || token.value === 'false')
          return { kind: 'literal', value: token.value === 'true' };
        if (peek()?.kind === '(') {
          throw new FilterSyntaxError(
            `The function '${token.value}' at position ${token.at} is only supported as a condition of its own.`,
          );
        }
        return { kind: 'column', name: columnName(token) };
      default:
        position--;
        return fail('a column or a value');
    }
  };

  const stringFunction = (name: StringFunction): FilterExpression => {
    position++;
    expect('(');
    const column = peek();
    if (column?.kind !== 'word') return fail('a column name');
    position++;
    const columnNameValue = columnName(column);
    expect(',');
    const value = peek();
    if (value?.kind !== 'string') return fail(`a text literal as the second argument of ${name}`);
    position++;
    expect(')');
    return { kind: 'function', name, column: columnNameValue, value: value.value };
  };

  const primary = (depth: number): FilterExpression => {
    if (depth > MAX_DEPTH) throw new FilterSyntaxError(`$filter is nested more than ${MAX_DEPTH} levels deep.`);
    const token = peek();
    if (token?.kind === '(') {
      position++;
      const inner = or(depth + 1);
      expect(')');
      return inner;
    }
    if (token?.kind === 'word' && token.value === 'not') {
      position++;
      return { kind: 'not', operand: primary(depth + 1) };
    }
    if (token?.kind === 'word' && FUNCTIONS.has(token.value) && tokens[position + 1]?.kind === '(') {
      return stringFunction(token.value as StringFunction);
    }
    const left = operand();
    const op = peek();
    if (op?.kind !== 'word' || !COMPARISONS.has(op.value)) {
      return fail(`a comparison operator (${[...COMPARISONS].join(', ')})`);
    }
    position++;
    const right = operand();
    if (left.kind === 'literal' && right.kind === 'literal') {
      throw new FilterSyntaxError(`A comparison at position ${op.at} compares two values; one side must be a column.`);
    }
    return { kind: 'compare', op: op.value as Comparison, left, right };
  };

  const and = (depth: number): FilterExpression => {
    let left = primary(depth);
    while (isWord('and')) {
      position++;
      left = { kind: 'and', left, right: primary(depth) };
    }
    return left;
  };

  const or = (depth: number): FilterExpression => {
    let left = and(depth);
    while (isWord('or')) {
      position++;
      left = { kind: 'or', left, right: and(depth) };
    }
    return left;
  };

  if (tokens.length === 0) throw new FilterSyntaxError('$filter is empty.');
  const expression = or(0);
  if (position < tokens.length) fail("'and', 'or' or the end of the expression");
  return expression;
}

// Case-insensitive, as Dataverse compares text; accents still count.
const collator = new Intl.Collator('en', { sensitivity: 'accent' });

/**
 * Orders two non-null values of the same type; undefined when they cannot be compared (different types), which
 * a filter treats as unknown. Shared with $orderby so filtering and sorting agree.
 */
export function compareValues(a: Value, b: Value): number | undefined {
  if (a instanceof Date || b instanceof Date) {
    const instant = (value: Value) =>
      value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
    const order = instant(a) - instant(b);
    return Number.isNaN(order) ? undefined : order;
  }
  if (typeof a === 'string' && typeof b === 'string') return collator.compare(a, b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return undefined;
}

/** True, false, or null for unknown (a comparison involving null), as in SQL. */
type Truth = boolean | null;

export function matches(expression: FilterExpression, row: Row): boolean {
  return evaluate(expression, row) === true;
}

function evaluate(expression: FilterExpression, row: Row): Truth {
  switch (expression.kind) {
    case 'and': {
      const left = evaluate(expression.left, row);
      if (left === false) return false;
      const right = evaluate(expression.right, row);
      if (right === false) return false;
      return left === null || right === null ? null : true;
    }
    case 'or': {
      const left = evaluate(expression.left, row);
      if (left === true) return true;
      const right = evaluate(expression.right, row);
      if (right === true) return true;
      return left === null || right === null ? null : false;
    }
    case 'not': {
      const operand = evaluate(expression.operand, row);
      return operand === null ? null : !operand;
    }
    case 'function': {
      const value = columnOf(row, expression.column);
      if (typeof value !== 'string') return null;
      const haystack = value.toLowerCase();
      const needle = expression.value.toLowerCase();
      if (expression.name === 'contains') return haystack.includes(needle);
      return expression.name === 'startswith' ? haystack.startsWith(needle) : haystack.endsWith(needle);
    }
    case 'compare': {
      const { op, left, right } = expression;
      // `eq null` and `ne null` are the only tests for null (IS NULL); any other comparison with null is unknown.
      if (isNullLiteral(left) || isNullLiteral(right)) {
        if (op !== 'eq' && op !== 'ne') return null;
        const isNull = valueOf(isNullLiteral(left) ? right : left, row) === null;
        return op === 'eq' ? isNull : !isNull;
      }
      return compare(op, valueOf(left, row), valueOf(right, row));
    }
  }
}

const valueOf = (operand: Operand, row: Row): Value =>
  operand.kind === 'literal' ? operand.value : columnOf(row, operand.name);

const isNullLiteral = (operand: Operand) => operand.kind === 'literal' && operand.value === null;

function compare(op: Comparison, left: Value, right: Value): Truth {
  if (left === null || right === null) return null;
  const order = compareValues(left, right);
  if (order === undefined) return null;
  switch (op) {
    case 'eq':
      return order === 0;
    case 'ne':
      return order !== 0;
    case 'gt':
      return order > 0;
    case 'ge':
      return order >= 0;
    case 'lt':
      return order < 0;
    case 'le':
      return order <= 0;
  }
}
