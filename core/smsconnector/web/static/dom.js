// Building the page from data. Text is only ever set with textContent: a consumer's message is hostile input.

/** A new element: attributes from `attrs` (on* and innerHTML are refused), then `children`, strings as text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (/^on/i.test(name) || name === "innerHTML") throw new Error(`refusing attribute ${name}`);
    if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** Only http(s) URLs become links or images: never javascript: or data: from a consumer's message. */
export function safeUrl(value) {
  try {
    const url = new URL(value, location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

export function byId(id) {
  return document.getElementById(id);
}

// Made once: a formatter made per call (toLocaleString with options) cost most of listing 500 conversations.
const TIME = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
const DAY_AND_TIME = new Intl.DateTimeFormat([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** A time in the reader's own zone: 14:03, or Dec 5, 14:03 when not today. */
export function when(iso) {
  const date = new Date(iso);
  return (new Date().toDateString() === date.toDateString() ? TIME : DAY_AND_TIME).format(date);
}

/** Run `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
