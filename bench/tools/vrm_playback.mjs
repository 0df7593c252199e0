// Plays exported animation files the way a three-vrm app does, in Node (no browser, no WebGL):
//   node bench/tools/vrm_playback.mjs --vrm AVATAR.vrm [--vrma animation.vrma] [--glb animation.glb] [--frames N]
// (after bench/tools/setup.sh). Loads with three's GLTFLoader + @pixiv/three-vrm's VRMLoaderPlugin (textures are
// skipped: Node has no image decoder, and nothing here needs pixels), plays each file with an AnimationMixer and
// calls vrm.update(dt) after every mixer step, as three-vrm's examples do, then reads back what was posed:
// - .vrma: createVRMAnimationClip on the VRM; per frame, every expression track's value must reach the expression
//   manager and its morph weights, and every bone track must reach the raw bone (the normalised rotation's angle
//   equals the raw bone's angle from its rest), after vrm.update().
// - .glb: loaded with the VRM plugin too (a VRM player loads any glTF so); if it declares VRM, vrm.update() runs
//   each frame as well. Every morph-weights and rotation track must still hold its own value after the update.
// Prints one JSON line per file; exit 1 if any check fails (2: a file could not be loaded).
// With only --vrm: prints what loaded (is it a VRM, its version, expressions, humanoid bones), a load check.
import { readFileSync } from "node:fs";
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { VRMLoaderPlugin } from "@pixiv/three-vrm";
import { VRMAnimationLoaderPlugin, createVRMAnimationClip } from "@pixiv/three-vrm-animation";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const FRAMES = Number(args.frames ?? 60);
const TOL_W = 1e-3; // morph / expression weight
const TOL_DEG = 1.0; // bone angle

function loader() {
  const l = new GLTFLoader();
  // Before three's own texture plugins (WebP/AVIF detection needs a DOM Image): an empty texture per index.
  l.pluginCallbacks.unshift(() => ({ name: "NODE_no_images", loadTexture: () => Promise.resolve(new THREE.Texture()) }));
  l.register((parser) => new VRMLoaderPlugin(parser));
  l.register((parser) => new VRMAnimationLoaderPlugin(parser));
  return l;
}

async function load(file) {
  const b = readFileSync(file);
  return loader().parseAsync(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength), "");
}

const angleDeg = (q) => (2 * Math.acos(Math.min(1, Math.abs(q.w))) * 180) / Math.PI;

function describe(vrm) {
  return {
    vrm: !!vrm, version: vrm?.meta?.metaVersion ?? null,
    expressions: vrm ? vrm.expressionManager?.expressions.map((e) => e.expressionName) ?? [] : [],
    bones: vrm ? Object.keys(vrm.humanoid.humanBones).length : 0,
  };
}

// Frames spread over the clip (not the last instant, where a LoopRepeat action wraps to 0).
function frameTimes(duration) {
  const out = [];
  for (let k = 0; k < FRAMES; k++) out.push((duration * k) / FRAMES);
  return out;
}

function playVrma(vrm, vrmAnimation) {
  const clip = createVRMAnimationClip(vrmAnimation, vrm);
  const mixer = new THREE.AnimationMixer(vrm.scene);
  mixer.clipAction(clip).play();
  const em = vrm.expressionManager;
  const exprTracks = [...vrmAnimation.expressionTracks.preset.entries(), ...vrmAnimation.expressionTracks.custom.entries()]
    .filter(([name]) => em?.getExpression(name));
  const boneTracks = [...vrmAnimation.humanoidTracks.rotation.entries()].filter(([b]) => vrm.humanoid.getRawBoneNode(b));
  const restRaw = new Map(boneTracks.map(([b]) => [b, vrm.humanoid.getRawBoneNode(b).quaternion.clone()]));
  // What the avatar's jaw-opening expression drives: the morph influences bound to "aa".
  const aaBinds = em?.getExpression("aa")?._binds?.filter((bd) => bd.primitives) ?? [];
  let t0 = 0, worstW = 0, worstDeg = 0, jawMax = 0, jawMorphMax = 0, jawTrackMax = 0, armMaxDeg = 0, armTrackMax = 0;
  const worstExpr = {}, worstBone = {};
  for (const t of frameTimes(clip.duration)) {
    mixer.update(t - t0);
    vrm.update(t - t0);
    t0 = t;
    for (const [name, track] of exprTracks) {
      const want = Math.min(1, Math.max(0, track.createInterpolant().evaluate(t)[0]));
      const got = em.getValue(name);
      const err = Math.abs(got - want);
      if (err > worstW) worstW = err;
      if (err > TOL_W) worstExpr[name] = Math.max(worstExpr[name] ?? 0, err);
      if (name === "aa") {
        jawTrackMax = Math.max(jawTrackMax, want);
        jawMax = Math.max(jawMax, got);
      }
    }
    for (const bd of aaBinds) {
      for (const prim of bd.primitives) jawMorphMax = Math.max(jawMorphMax, prim.morphTargetInfluences[bd.index] ?? 0);
    }
    for (const [bone, track] of boneTracks) {
      const v = track.createInterpolant().evaluate(t);
      const want = angleDeg(new THREE.Quaternion(v[0], v[1], v[2], v[3]));
      const raw = vrm.humanoid.getRawBoneNode(bone).quaternion;
      const got = angleDeg(restRaw.get(bone).clone().invert().multiply(raw));
      const err = Math.abs(got - want);
      if (err > worstDeg) worstDeg = err;
      if (err > TOL_DEG) worstBone[bone] = Math.max(worstBone[bone] ?? 0, err);
      if (bone === "leftLowerArm") {
        armTrackMax = Math.max(armTrackMax, want);
        armMaxDeg = Math.max(armMaxDeg, got);
      }
    }
  }
  const ok = exprTracks.length > 0 && boneTracks.length > 0 && worstW <= TOL_W && worstDeg <= TOL_DEG
    && (jawTrackMax < 0.05 || (jawMax > 0.05 && (aaBinds.length === 0 || jawMorphMax > 0.05)));
  return {
    expression_tracks: exprTracks.length, bone_tracks: boneTracks.length, jaw_aa_track_max: +jawTrackMax.toFixed(3),
    jaw_aa_after_update_max: +jawMax.toFixed(3), jaw_morph_max: +jawMorphMax.toFixed(3),
    left_lower_arm_track_max_deg: +armTrackMax.toFixed(2), left_lower_arm_raw_max_deg: +armMaxDeg.toFixed(2),
    worst_weight_error: +worstW.toFixed(4), worst_bone_error_deg: +worstDeg.toFixed(3),
    reset_expressions: worstExpr, reset_bones: worstBone, ok,
  };
}

function playGlb(gltf) {
  const vrm = gltf.userData.vrm;
  const clip = gltf.animations[0];
  if (!clip) return { declares_vrm: !!vrm, ok: false, error: "no animation" };
  const root = vrm ? vrm.scene : gltf.scene;
  const mixer = new THREE.AnimationMixer(root);
  mixer.clipAction(clip).play();
  // Bind each track to its object the way the mixer does.
  const tracks = clip.tracks.filter((tr) => tr.name.endsWith(".morphTargetInfluences") || tr.name.endsWith(".quaternion"))
    .map((tr) => ({ tr, binding: THREE.PropertyBinding.create(root, tr.name) }));
  let t0 = 0, worstW = 0, worstDeg = 0, morphMax = 0, resetW = 0, resetQ = 0;
  for (const t of frameTimes(clip.duration)) {
    mixer.update(t - t0);
    if (vrm) vrm.update(t - t0);
    t0 = t;
    for (const { tr, binding } of tracks) {
      const want = tr.createInterpolant().evaluate(t);
      const got = new Array(want.length).fill(0);
      binding.getValue(got, 0);
      if (tr.name.endsWith(".morphTargetInfluences")) {
        let e = 0;
        for (let k = 0; k < want.length; k++) { e = Math.max(e, Math.abs(got[k] - want[k])); morphMax = Math.max(morphMax, want[k]); }
        worstW = Math.max(worstW, e);
        if (e > TOL_W) resetW += 1;
      } else {
        const a = new THREE.Quaternion(...want), b = new THREE.Quaternion(...got);
        const e = angleDeg(a.invert().multiply(b));
        worstDeg = Math.max(worstDeg, e);
        if (e > TOL_DEG) resetQ += 1;
      }
    }
  }
  return {
    declares_vrm: !!vrm, weight_tracks: tracks.filter((x) => x.tr.name.endsWith(".morphTargetInfluences")).length,
    rotation_tracks: tracks.filter((x) => x.tr.name.endsWith(".quaternion")).length, morph_track_max: +morphMax.toFixed(3),
    worst_weight_error: +worstW.toFixed(4), worst_bone_error_deg: +worstDeg.toFixed(3),
    reset_weight_samples: resetW, reset_rotation_samples: resetQ, ok: tracks.length > 0 && resetW === 0 && resetQ === 0,
  };
}

let failed = false;
try {
  const avatar = args.vrm ? await load(args.vrm) : null;
  const vrm = avatar?.userData.vrm;
  if (args.vrm) console.log(JSON.stringify({ file: args.vrm, kind: "avatar", ...describe(vrm), ok: !!vrm }));
  if (args.vrm && !vrm) failed = true;
  if (args.vrma) {
    const anim = (await load(args.vrma)).userData.vrmAnimations?.[0];
    let r;
    if (!anim) r = { ok: false, error: "no VRMC_vrm_animation in the file" };
    else if (!vrm) r = { ok: false, error: "a .vrma needs a VRM avatar (--vrm)" };
    else r = playVrma(vrm, anim);
    console.log(JSON.stringify({ file: args.vrma, kind: "vrma", ...r }));
    failed ||= !r.ok;
  }
  if (args.glb) {
    const r = playGlb(await load(args.glb));
    console.log(JSON.stringify({ file: args.glb, kind: "glb", ...r }));
    failed ||= !r.ok;
  }
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  process.exit(2);
}
process.exit(failed ? 1 : 0);
