import { getJson, postJson } from './api.js';
import { fill, formatTime, h } from './dom.js';
import { openLive } from './live.js';

/** Events a consumer group gave up on: why, the original entry, how often delivered; re-drive one. */
export async function mountDeadLetters(view) {
  const message = h('div', { role: 'status', 'aria-live': 'polite' });
  const list = h('div');
  view.append(
    h('h1', { text: 'Dead letters' }),
    h('p', {
      class: 'sub',
      text: 'Events a consumer group kept failing on. Fix the cause, then re-drive: the event is delivered again to its group.',
    }),
    message,
    h('section', { class: 'panel' }, list),
  );

  async function redrive(letter, button) {
    button.disabled = true;
    try {
      const result = await postJson(`/api/dead-letters/${encodeURIComponent(letter.id)}/rejouer`);
      fill(
        message,
        h('p', {
          class: 'message',
          text: `Dead letter ${letter.id} re-driven to ${letter.group} (${result.stream}, new entry ${result.new_entry_id}).`,
        }),
      );
    } catch (error) {
      button.disabled = false;
      fill(
        message,
        h('p', {
          class: 'message error',
          role: 'alert',
          text: `Re-drive of ${letter.id} failed: ${error.message}`,
        }),
      );
    }
    await load();
  }

  async function load() {
    const letters = await getJson('/api/dead-letters?limit=200');
    if (letters.length === 0) {
      fill(list, h('p', { class: 'empty', text: 'No dead letter: every event was handled.' }));
      return;
    }
    fill(
      list,
      h(
        'table',
        { 'aria-label': 'Dead letters' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['id', 'group', 'stream', 'reason', 'deliveries', 'failed at', 'original entry', ''].map((name) =>
              h('th', { text: name }),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          letters.map((letter) => {
            const button = h('button', {
              type: 'button',
              'aria-label': `Re-drive dead letter ${letter.id} to ${letter.group}`,
              text: 'Re-drive',
            });
            button.addEventListener('click', () => redrive(letter, button));
            return h(
              'tr',
              { 'data-dead-letter': letter.id },
              h('td', { class: 'mono', text: letter.id }),
              h('td', { class: 'mono', text: letter.group }),
              h('td', { class: 'mono', text: letter.stream }),
              h('td', { text: letter.reason }),
              h('td', { class: 'num', text: letter.deliveries }),
              h('td', { text: formatTime(letter.failed_at) }),
              h(
                'td',
                {},
                h(
                  'details',
                  {},
                  h('summary', { text: `${letter.fields.event_type ?? 'entry'} ${letter.entry_id}` }),
                  h('pre', { text: JSON.stringify(letter.fields, null, 2) }),
                ),
              ),
              h('td', {}, button),
            );
          }),
        ),
      ),
    );
  }

  await load();
  // A re-driven letter leaves once its group applied it again, which the count may not tell apart from
  // the re-drive itself: while letters are shown, look again every 2 s as well.
  const timer = setInterval(() => {
    if (list.querySelector('tr[data-dead-letter]')) load().catch(() => {});
  }, 2_000);
  let count = null;
  const close = openLive(
    { changes: 'none', overview: true },
    {
      overview: (reading) => {
        if (reading.deadLetters !== count) {
          count = reading.deadLetters;
          load().catch(() => {});
        }
      },
    },
  );
  return () => {
    clearInterval(timer);
    close();
  };
}
