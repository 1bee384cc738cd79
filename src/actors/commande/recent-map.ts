/**
 * RecentMap now lives in src/collections (the Redis consumer uses it too, and src/bus should not reach
 * into an actor's folder). This re-export is only for src/explorer/live-feed.ts, which is being changed
 * by another piece of work right now: point it at ../collections/recent-map.js, then delete this file.
 */
export { RecentMap } from '../../collections/recent-map.js';
