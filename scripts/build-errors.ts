/** Errors of `cloudsocket build` about where it writes. */
import { CloudsocketError } from '../shared/errors.js';

/** Written into each folder build makes: build deletes a folder only when it holds this file. */
export const BUILD_MARKER = '.cloudsocket-build';

/** An output folder build would replace holds something build did not make. */
export class OutputFolderNotOursError extends CloudsocketError {
  constructor(readonly directory: string) {
    super(
      'output_folder_not_ours',
      `build: ${directory} was not made by cloudsocket build (it has no ${BUILD_MARKER} file), so build will not replace it; ` +
        'write the build elsewhere with --out DIR or outDir in cloudsocket.config.ts (or CLOUDSOCKET_DIST_DIR), or move that folder away',
    );
  }
}

/** A file build writes beside its folders (cloudbaserc.json, cloudbase.zip) is there, and no folder of build's says it made it. */
export class OutputFileNotOursError extends CloudsocketError {
  constructor(readonly file: string) {
    super(
      'output_file_not_ours',
      `build: ${file} is there but no earlier cloudsocket build wrote it (there is no cloudbase/ folder of build's beside it), so build will not overwrite it; ` +
        'write the build elsewhere with --out DIR or outDir in cloudsocket.config.ts (or CLOUDSOCKET_DIST_DIR), or move that file away',
    );
  }
}
