#version 330
uniform sampler2D u_src;
uniform vec2 u_texel;
in vec2 v_uv;
out vec4 f_color;
float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }
void main() {
    // The neighbours sit on texel centres: texelFetch skips the filtering that texture() pays for on llvmpipe.
    ivec2 c = ivec2(gl_FragCoord.xy);
    ivec2 hi_c = textureSize(u_src, 0) - 1;
    vec3 nw = texelFetch(u_src, clamp(c + ivec2(-1, -1), ivec2(0), hi_c), 0).rgb;
    vec3 ne = texelFetch(u_src, clamp(c + ivec2(1, -1), ivec2(0), hi_c), 0).rgb;
    vec3 sw = texelFetch(u_src, clamp(c + ivec2(-1, 1), ivec2(0), hi_c), 0).rgb;
    vec3 se = texelFetch(u_src, clamp(c + ivec2(1, 1), ivec2(0), hi_c), 0).rgb;
    vec3 m = texelFetch(u_src, c, 0).rgb;
    float lnw = luma(nw), lne = luma(ne), lsw = luma(sw), lse = luma(se), lm = luma(m);
    float lo = min(lm, min(min(lnw, lne), min(lsw, lse)));
    float hi = max(lm, max(max(lnw, lne), max(lsw, lse)));
    if (hi - lo < max(1.0 / 24.0, hi * 0.125)) {  // no edge here (FXAA's contrast threshold): most pixels stop
        f_color = vec4(m, 1.0);
        return;
    }
    vec2 dir = vec2(-((lnw + lne) - (lsw + lse)), (lnw + lsw) - (lne + lse));
    float reduce = max((lnw + lne + lsw + lse) * (0.25 / 8.0), 1.0 / 128.0);
    float rcp = 1.0 / (min(abs(dir.x), abs(dir.y)) + reduce);
    dir = clamp(dir * rcp, vec2(-8.0), vec2(8.0)) * u_texel;
    vec3 a = 0.5 * (texture(u_src, v_uv + dir * (1.0 / 3.0 - 0.5)).rgb
                    + texture(u_src, v_uv + dir * (2.0 / 3.0 - 0.5)).rgb);
    vec3 b = a * 0.5 + 0.25 * (texture(u_src, v_uv - dir * 0.5).rgb + texture(u_src, v_uv + dir * 0.5).rgb);
    float lb = luma(b);
    f_color = vec4((lb < lo || lb > hi) ? a : b, 1.0);
}
