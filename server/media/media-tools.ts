/** The ffmpeg and ffprobe executables the server uses (resolved by runtime/ffmpeg-path.ts). */
export interface MediaTools {
  ffmpeg: string;
  ffprobe: string;
}
