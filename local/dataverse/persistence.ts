/**
 * The snapshot file behind `npm start` (.local/dataverse.json): the tables, the version counter and the change
 * log, so the CRM's data and the delta links the sync holds survive a restart. Written whole, a moment after
 * writes settle (one file write per burst, not per request) and on close; through a temporary file and a rename,
 * so a crash mid-write leaves the previous snapshot rather than half a file.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import type { Store, StoreSnapshot } from './store';

/** How long after a write the snapshot is saved; writes within it share one save. */
const SAVE_DELAY_MS = 200;

/** Reads a snapshot; undefined when there is no file yet. A file that is there but unreadable is an error, not a reset. */
export function loadSnapshot(path: string): StoreSnapshot | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as StoreSnapshot;
  } catch (error) {
    throw new Error(
      `${path} is not a development Dataverse snapshot (${error instanceof Error ? error.message : String(error)}); ` +
        'move it away to start empty',
    );
  }
}

export class SnapshotFile {
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly store: Store,
    private readonly log: (line: string) => void,
  ) {}

  /** Called after every change. */
  changed(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.save();
    }, SAVE_DELAY_MS);
  }

  /** Saves now if anything changed since the last save, and waits for it. */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.save();
  }

  private save(): Promise<void> {
    // Saves run one after another; each writes the state as it is when it starts.
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const temporary = `${this.path}.${process.pid}.tmp`;
      try {
        await mkdir(dirname(this.path), { recursive: true });
        await writeFile(temporary, JSON.stringify(this.store.snapshot()));
        await rename(temporary, this.path);
      } catch (error) {
        this.dirty = true;
        this.log(`could not save ${this.path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
    return this.saving;
  }
}
