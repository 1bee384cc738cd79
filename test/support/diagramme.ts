import type { HttpClient } from './http-client.js';

export interface DiagrammeResponse {
  status: number;
  contentType: string | null;
  text: string;
}

/** GET /api/commandes/:id/diagramme, keeping the content type (the shared HttpClient drops headers). */
export async function fetchDiagramme(api: HttpClient, commandeId: string): Promise<DiagrammeResponse> {
  const response = await fetch(`${api.baseUrl}/api/commandes/${encodeURIComponent(commandeId)}/diagramme`, {
    headers: api.authorization,
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text: await response.text(),
  };
}

// Graphviz writes each state as `<g id="nodeN" class="node"><title>state</title>...</g>`.
const NODE_GROUP = /<g id="node\d+" class="node">\s*<title>([^<]*)<\/title>([\s\S]*?)<\/g>/g;

/** The states drawn highlighted (the thick border the diagram gives the current state). */
export function highlightedStates(svg: string): string[] {
  return [...svg.matchAll(NODE_GROUP)]
    .filter(([, , body]) => body?.includes('stroke-width="4"'))
    .map(([, title]) => title ?? '');
}
