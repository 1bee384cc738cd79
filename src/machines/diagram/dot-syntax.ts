/** Graphviz HTML-like label: written between angle brackets instead of quotes. */
export interface HtmlLabel {
  html: string;
}

export type DotAttributes = Record<string, string | number | HtmlLabel>;

export function quote(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** `[name="value", ...]`, in insertion order so the output is stable. */
export function attributes(attrs: DotAttributes): string {
  const pairs = Object.entries(attrs).map(([name, value]) => {
    if (typeof value === 'number') return `${name}=${value}`;
    if (typeof value === 'string') return `${name}=${quote(value)}`;
    return `${name}=<${value.html}>`;
  });
  return `[${pairs.join(', ')}]`;
}
