import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const DASHBOARDS_DIR = new URL('../../observability/grafana/dashboards/', import.meta.url);

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  datasourceUid: string | undefined;
}

const datasourceSchema = z.object({ type: z.string().optional(), uid: z.string().optional() }).optional();
interface Panel {
  title?: string | undefined;
  type?: string | undefined;
  datasource?: z.infer<typeof datasourceSchema>;
  targets?: {
    refId?: string | undefined;
    expr?: string | undefined;
    datasource?: z.infer<typeof datasourceSchema>;
  }[];
  panels?: Panel[] | undefined;
}
const panelSchema: z.ZodType<Panel> = z.lazy(() =>
  z.object({
    title: z.string().optional(),
    type: z.string().optional(),
    datasource: datasourceSchema,
    targets: z
      .array(
        z.object({ refId: z.string().optional(), expr: z.string().optional(), datasource: datasourceSchema }),
      )
      .optional(),
    panels: z.array(panelSchema).optional(),
  }),
);
const dashboardSchema = z.object({ uid: z.string(), title: z.string(), panels: z.array(panelSchema) });

/** Every PromQL expression of every panel target, rows' nested panels included. */
export function dashboardQueries(file: string): PanelQuery[] {
  const dashboard = dashboardSchema.parse(JSON.parse(readFileSync(new URL(file, DASHBOARDS_DIR), 'utf8')));
  const queries: PanelQuery[] = [];
  const visit = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr === undefined) continue;
        queries.push({
          dashboard: file,
          panel: panel.title ?? '(untitled)',
          refId: target.refId ?? '?',
          expr: target.expr,
          datasourceUid: target.datasource?.uid ?? panel.datasource?.uid,
        });
      }
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  return queries;
}

/**
 * Grafana's built-in interval variables, as this test evaluates them: windows longer than the whole test,
 * so that what a rate or a quantile sees does not depend on how fast a shared machine runs it.
 */
const GRAFANA_VARIABLES: Record<string, string> = {
  __rate_interval: '10m',
  __interval: '10m',
  __range: '1h',
};

export function substituteGrafanaVariables(expr: string): string {
  const substituted = expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => {
    const value = GRAFANA_VARIABLES[name];
    if (value === undefined) throw new Error(`unknown Grafana variable ${whole} in ${expr}`);
    return value;
  });
  return substituted;
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring']);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers, ranges and
 * label lists are taken out, minus functions and aggregations (followed by a parenthesis) and keywords.
 * Enough for the expressions of our dashboards; `or vector(0)` must not hide a misspelt name.
 */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.:])[a-zA-Z_:][\w:]*/g)) {
    const name = match[0];
    const after = bare.slice((match.index ?? 0) + name.length);
    if (/^\s*\(/.test(after) || PROMQL_KEYWORDS.has(name)) continue;
    names.add(name);
  }
  return [...names];
}
