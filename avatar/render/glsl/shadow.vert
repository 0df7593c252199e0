#version 330
uniform mat4 u_view_proj;
uniform vec3 u_centre;
uniform float u_radius;
in vec2 in_corner;
out vec2 v_p;
void main() {
    v_p = in_corner;
    gl_Position = u_view_proj * vec4(u_centre + vec3(in_corner.x, 0.0, in_corner.y) * u_radius, 1.0);
}
