import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineRegistry } from '../registry.js';
import { generateDiagramFiles } from './diagram-files.js';
import { GENERATED_DIAGRAMS_DIR, isGeneratedDiagramFile } from './generated-diagrams-dir.js';

async function committedContent(fileName: string): Promise<string | null> {
  try {
    return await readFile(join(GENERATED_DIAGRAMS_DIR, fileName), 'utf8');
  } catch {
    return null;
  }
}

describe('generated-diagrams/', () => {
  it('matches the machines (otherwise run npm run diagrams and commit the result)', async () => {
    const expected = await generateDiagramFiles(machineRegistry);
    const problems: string[] = [];
    for (const file of expected) {
      const committed = await committedContent(file.fileName);
      if (committed === null) problems.push(`${file.fileName} is missing`);
      else if (committed !== file.content) problems.push(`${file.fileName} is out of date`);
    }
    const present = await readdir(GENERATED_DIAGRAMS_DIR).catch(() => []);
    const expectedNames = new Set(expected.map((file) => file.fileName));
    for (const fileName of present.filter(isGeneratedDiagramFile)) {
      if (!expectedNames.has(fileName)) problems.push(`${fileName} belongs to no registered machine`);
    }
    expect(problems, `generated-diagrams/ is stale: ${problems.join('; ')}. Run npm run diagrams.`).toEqual(
      [],
    );
  });
});
