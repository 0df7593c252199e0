#version 330
in vec2 v_p;
out vec4 f_color;
void main() {
    float r = length(v_p * vec2(1.0, 1.6));
    f_color = vec4(0.05, 0.06, 0.08, 0.45 * (1.0 - smoothstep(0.15, 1.0, r)));
}
