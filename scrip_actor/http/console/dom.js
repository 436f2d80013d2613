// Building the page without innerHTML: every value goes in as text, so data can never become markup.

// el("a", {href: "#/x", class: "y"}, "text", childNode, ...): strings become text nodes; on* attributes are refused.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) throw new Error("event handlers are attached with addEventListener");
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A value as text: objects and arrays as compact JSON.
export function text(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

const NUMBER = /^-?\d+(\.\d+)?$/;

// A table of rows (objects). columns: [name] or [[name, (row) => node|text]]; by default every key seen.
export function table(rows, columns = undefined) {
  if (!rows || rows.length === 0) return el("p", { class: "muted" }, "none");
  const spec = (columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))]).map((column) =>
    Array.isArray(column) ? column : [column, (row) => text(row[column])],
  );
  const head = el("tr", {}, spec.map(([name]) => el("th", {}, name)));
  const body = rows.map((row) =>
    el(
      "tr",
      {},
      spec.map(([, render]) => {
        const value = render(row);
        const numeric = typeof value === "string" && NUMBER.test(value);
        const status = typeof value === "string" && /^[A-Z_]+$/.test(value) ? `status-${value}` : undefined;
        return el("td", { class: numeric ? "num" : status }, value);
      }),
    ),
  );
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

// A two-column table of an object's fields.
export function fields(object, names = undefined) {
  const rows = (names ?? Object.keys(object)).map((name) => ({ field: name, value: text(object[name]) }));
  return table(rows, ["field", "value"]);
}

export function link(href, label) {
  return el("a", { href }, label);
}

export function errorBox(error) {
  const message = error?.body ? `${error.status} ${error.body.code}: ${error.body.message}` : String(error);
  return el("div", { class: "error", role: "alert" }, message);
}

// Replace the children of node with the given ones.
export function show(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== undefined && child !== null));
}
