#version 330
uniform vec4 u_color;
uniform float u_rough;
#ifdef TEXTURED
uniform sampler2D u_tex;
#endif
#ifdef WRINKLES
uniform sampler2D u_wrinkle_tex;  // RGBA crease channels (avatar.render.wrinkles), 1 = the bottom of a groove
uniform vec4 u_wrinkle_l;  // each channel's strength this frame on the avatar's left half
uniform vec4 u_wrinkle_r;
uniform vec2 u_forehead_lateral;  // the forehead lines' strength away from the midline (left, right)
in float v_side;
in float v_lateral;
const float WRINKLE_DEPTH = 0.0007;  // m: a full crease as a groove this deep
#endif
uniform int u_alpha_mode;  // 0 opaque, 1 mask, 2 blend
uniform float u_cutoff;
#ifdef HAIR
in vec3 v_strand;
#ifdef TEXTURED
in float v_strand_mean;
#endif
#endif
uniform float u_rim;  // how much of the rim light reaches the material (0 inside the mouth: extras.cavity)
uniform bool u_interior;  // a morphing single-sided mesh: its back faces are the inside of the head
uniform vec3 u_eye;
uniform vec3 u_key_dir;
uniform vec3 u_fill_dir;
uniform vec3 u_rim_dir;
in vec3 v_pos;
in vec3 v_nrm;
in vec2 v_uv;
out vec4 f_color;

const vec3 KEY = vec3(1.05, 0.97, 0.88);
const vec3 FILL = vec3(0.34, 0.40, 0.52);
const vec3 RIM = vec3(0.75, 0.80, 0.95);
const vec3 SKY = vec3(0.36, 0.38, 0.44);
const vec3 GROUND = vec3(0.20, 0.17, 0.15);

// Linear to display gamma, c^(1/2.2), as sqrt(c) times a quadratic in sqrt(c) (least squares on [0, 1]): within
// 1.7/255 of pow() in the darkest tones and closer elsewhere, and on llvmpipe about 2 ms a 512x512 frame cheaper.
vec3 to_display(vec3 c) {
    vec3 s = sqrt(clamp(c, 0.0, 1.0));
    return s * (1.2008 + s * (-0.3307 + s * 0.1299));
}

void main() {
    vec4 base = u_color;
#ifdef TEXTURED
    vec4 t = texture(u_tex, v_uv);
    base *= vec4(pow(t.rgb, vec3(2.2)), t.a);  // sRGB texels to linear
#endif
#ifdef ALPHA_MASK
    if (u_alpha_mode == 1 && base.a < u_cutoff) discard;
#endif
    if (u_interior && !gl_FrontFacing) {  // seen through an opened mouth or a lid: a deep shadow of the skin
        f_color = vec4(to_display(base.rgb * vec3(0.07, 0.05, 0.05)), 1.0);
        return;
    }
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;  // double-sided materials are lit from the side we see
    float occ = 1.0;
#ifdef WRINKLES
    // Expression creases as a bump: the groove's depth is a height field whose screen-space gradient tilts the
    // normal (Mikkelsen 2010, bump mapping without tangents), and the groove's floor gets less light.
    vec4 strength = mix(u_wrinkle_r, u_wrinkle_l, v_side);
    strength.r = mix(strength.r, mix(u_forehead_lateral.y, u_forehead_lateral.x, v_side), v_lateral);
    float crease = dot(texture(u_wrinkle_tex, v_uv), strength);
    float hgt = -WRINKLE_DEPTH * crease;
    vec3 dpx = dFdx(v_pos);
    vec3 dpy = dFdy(v_pos);
    vec3 rx = cross(dpy, n);
    vec3 ry = cross(n, dpx);
    float det = dot(dpx, rx);
    n = normalize(abs(det) * n - sign(det) * (dFdx(hgt) * rx + dFdy(hgt) * ry));
    occ = 1.0 - 0.3 * clamp(crease, 0.0, 1.0);
#endif
    vec3 v = normalize(u_eye - v_pos);
    // Wrapped diffuse: light bleeds a little past the terminator, which reads as soft skin.
    float kd = clamp((dot(n, u_key_dir) + 0.3) / 1.3, 0.0, 1.0);
    float fd = clamp((dot(n, u_fill_dir) + 0.2) / 1.2, 0.0, 1.0);
    float rd = clamp(dot(n, u_rim_dir), 0.0, 1.0);
    vec3 amb = mix(GROUND, SKY, 0.5 + 0.5 * n.y);
    vec3 diffuse = (amb + KEY * kd + FILL * fd + RIM * rd * 0.5 * u_rim) * occ;
    vec3 hk = normalize(u_key_dir + v);
    float f1 = 1.0 - max(dot(n, v), 0.0);
    float fres = (f1 * f1) * (f1 * f1);
#ifdef HAIR
    // Strands (Kajiya & Kay 1989, shifted lobes after Scheuermann 2004): they run along the surface away from the
    // crown, so a light's highlight is a band across them, broken up by the strand texture; the outline darkens
    // (light passes between the strands there) and the rim light only tints it hair-coloured.
    vec3 along = v_strand - n * dot(v_strand, n);
    float reach = length(along);
    vec3 tng = along / max(reach, 1e-6);
    float strand = 1.0;  // this texel against its neighbourhood: the band breaks up into strands
#ifdef TEXTURED
    strand = dot(t.rgb, vec3(0.3, 0.59, 0.11)) / v_strand_mean;
#endif
    float fade = smoothstep(0.005, 0.03, reach) * strand;  // no band at the crown, where strands face the eye
    // Each lobe's tangent is tng + s n, shifted by s along the normal: as tng is a unit vector across n, its cosine
    // with a half vector h is (tng.h + s n.h) / sqrt(1 + s^2), without normalising a vector per lobe.
    // Primary lobe shifted towards the tips; the secondary, hair-coloured, towards the roots; the sky's band on
    // top of the head towards the crown (the key's own band falls low, at the temples).
    vec3 hs = normalize(vec3(0.0, 1.0, 0.0) + v);
    vec3 shift = 0.25 * strand + vec3(-0.15, 0.10, -0.45);
    float th = dot(tng, hk);
    float nh = dot(n, hk);
    vec3 cs = (vec3(th, th, dot(tng, hs)) + shift * vec3(nh, nh, dot(n, hs))) * inversesqrt(1.0 + shift * shift);
    float c1 = cs.x;
    float c2 = cs.y;
    float c3 = cs.z;
    float key = smoothstep(-0.1, 0.3, dot(n, u_key_dir));
    vec3 hue = mix(vec3(1.0), base.rgb / max(dot(base.rgb, vec3(0.3333)), 1e-3), 0.6);  // towards the hair's colour
    float shin = mix(160.0, 10.0, u_rough);  // the primary band's sharpness; the others are broader
    vec3 spec = fade * (hue * (KEY * (key * 0.06 * pow(max(1.0 - c1 * c1, 0.0), shin))
                               + 0.04 * strand * pow(max(1.0 - c3 * c3, 0.0), shin * 0.5))
                        + KEY * base.rgb * (key * 2.0 * pow(max(1.0 - c2 * c2, 0.0), shin * 0.15)));
    diffuse *= 1.0 - 0.5 * f1 * f1;
    vec3 rim = RIM * base.rgb * (fres * rd * u_rim);
#else
    float r2 = u_rough * u_rough;
    float shin = clamp(2.0 / max(r2 * r2, 1e-3) - 2.0, 4.0, 400.0);
    float spec_k = mix(0.25, 0.03, u_rough);
    vec3 spec = KEY * spec_k * pow(max(dot(n, hk), 0.0), shin) * step(0.0, dot(n, u_key_dir));
    vec3 rim = RIM * fres * 0.35 * rd * u_rim;
#endif
    vec3 c = base.rgb * diffuse + spec + rim;
    c = c / (1.0 + 0.15 * c);  // a gentle shoulder so highlights do not clip to white
    f_color = vec4(to_display(c), u_alpha_mode == 2 ? base.a : 1.0);
}
