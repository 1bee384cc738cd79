import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { generateDiagramFiles } from '../src/machines/diagram/diagram-files.js';
import {
  GENERATED_DIAGRAMS_DIR,
  isGeneratedDiagramFile,
} from '../src/machines/diagram/generated-diagrams-dir.js';
import { machineRegistry } from '../src/machines/registry.js';

const files = await generateDiagramFiles(machineRegistry);
await mkdir(GENERATED_DIAGRAMS_DIR, { recursive: true });
const shown = (fileName: string) => relative(process.cwd(), join(GENERATED_DIAGRAMS_DIR, fileName));

for (const file of files) {
  await writeFile(join(GENERATED_DIAGRAMS_DIR, file.fileName), file.content);
  console.log(`wrote ${shown(file.fileName)} (${Buffer.byteLength(file.content)} bytes)`);
}

// A machine removed from the registry must not leave its old drawing behind.
const written = new Set(files.map((file) => file.fileName));
for (const fileName of await readdir(GENERATED_DIAGRAMS_DIR)) {
  if (isGeneratedDiagramFile(fileName) && !written.has(fileName)) {
    await rm(join(GENERATED_DIAGRAMS_DIR, fileName));
    console.log(`removed ${shown(fileName)} (no such machine in src/machines/registry.ts)`);
  }
}
