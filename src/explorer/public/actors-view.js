import { getJson, machinePicture, postJson } from './api.js';
import { fill, formatTime, h, statutBadge } from './dom.js';
import { openLive } from './live.js';

const REFRESH_MS = 2_000;

/** Which processes host which actors, alive or not; pause and resume the actors of this process. */
export async function mountActors(view) {
  const picture = await machinePicture();
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  const processes = h('div');
  const strip = h('ul', { class: 'state-strip', 'aria-label': 'Commandes in each state' });
  view.append(
    h('h1', { text: 'Actors' }),
    h('p', {
      class: 'sub',
      text: 'Pause an actor of the process serving this page, as if its service were down: its events wait on the bus. Resume it and they are handled.',
    }),
    message,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'strip-title' },
      h('h2', { id: 'strip-title', text: 'Commandes in each state now' }),
      strip,
    ),
    processes,
  );

  async function act(actor, verb) {
    try {
      await postJson(`/api/actors/${actor}/${verb}`);
      fill(
        message,
        h('p', {
          class: 'message',
          text: `${actor} ${verb === 'pause' ? 'paused: its events wait on the bus' : 'resumed'}.`,
        }),
      );
    } catch (error) {
      fill(
        message,
        h('p', { class: 'message error', role: 'alert', text: `${verb} ${actor} failed: ${error.message}` }),
      );
    }
    await load();
  }

  async function load() {
    const rows = await getJson('/api/processes');
    fill(
      processes,
      rows.length === 0
        ? h('p', { class: 'empty', text: 'No process has reported yet.' })
        : rows.map((row) =>
            h(
              'section',
              {
                class: 'panel',
                'aria-label': `Process ${row.hostname} pid ${row.pid}`,
                'data-process': row.process_id,
              },
              h(
                'h2',
                {},
                `${row.hostname} · pid ${row.pid} `,
                h('span', { class: row.alive ? 'alive' : 'gone', text: row.alive ? '● alive' : '○ gone' }),
                row.self ? h('span', { class: 'sub', text: ' — this page’s process' }) : null,
              ),
              h('p', {
                class: 'sub',
                text: `bus ${row.bus} · API ${row.api_url ?? 'not listening'} · up since ${formatTime(row.started_at)} · last heartbeat ${formatTime(row.heartbeat_at)}`,
              }),
              h(
                'ul',
                { class: 'actor-list' },
                row.actors.map((actor) => {
                  const paused = row.paused.includes(actor);
                  const pausable = row.self && row.consumers.includes(actor);
                  return h(
                    'li',
                    { class: `actor${paused ? ' paused' : ''}`, 'data-actor': actor },
                    h('strong', { text: actor }),
                    h('span', {
                      class: 'sub',
                      text: paused ? 'paused' : row.consumers.includes(actor) ? 'reading' : 'running',
                    }),
                    pausable
                      ? h('button', {
                          type: 'button',
                          class: paused ? null : 'secondary',
                          'aria-label': `${paused ? 'Resume' : 'Pause'} ${actor}`,
                          text: paused ? 'Resume' : 'Pause',
                          onclick: () => act(actor, paused ? 'resume' : 'pause'),
                        })
                      : null,
                  );
                }),
              ),
              !row.self && row.api_url
                ? h(
                    'p',
                    { class: 'sub' },
                    'To pause its actors, open ',
                    h('a', { href: `${row.api_url}/explorer#/actors`, text: 'its explorer' }),
                    '.',
                  )
                : null,
            ),
          ),
    );
  }

  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  const close = openLive(
    { changes: 'none', overview: true },
    {
      overview: (reading) =>
        fill(
          strip,
          picture.states.map((state) =>
            h(
              'li',
              { 'data-state': state.key },
              statutBadge(state.key, picture),
              ' ',
              h('strong', { class: 'count', text: reading.states?.[state.key] ?? 0 }),
            ),
          ),
        ),
    },
  );
  return () => {
    clearInterval(timer);
    close();
  };
}
