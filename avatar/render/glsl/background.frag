#version 330
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec3 top = vec3(0.80, 0.84, 0.89);
    vec3 bottom = vec3(0.47, 0.51, 0.58);
    vec3 c = mix(bottom, top, smoothstep(0.0, 1.0, v_uv.y));
    vec2 d = v_uv - vec2(0.5, 0.55);
    c *= 1.0 - 0.35 * dot(d, d);  // soft vignette
    f_color = vec4(c, 1.0);
}
