#version 330
uniform mat4 u_view_proj;
uniform mat4 u_model;
uniform bool u_skinned;
uniform sampler2D u_joints;  // 4 texels per joint: the columns of world(joint) * inverseBind
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
in vec4 in_joints;
in vec4 in_weights;
out vec3 v_pos;
out vec3 v_nrm;
out vec2 v_uv;
#ifdef WRINKLES
out float v_side;  // 1 on the avatar's left half (+x in its bind pose), 0 on its right, blended over the middle cm
out float v_lateral;  // 0 nearer the midline than u_lateral_band.x, 1 beyond u_lateral_band.y
uniform vec2 u_lateral_band;  // where the forehead lines turn lateral (m): the wrinkle map's foreheadLateral
#endif
#ifdef HAIR
uniform vec3 u_hair_crown;  // where the strands fall away from (the mesh's bind space): extras.hair.crown
out vec3 v_strand;  // from the crown to this point, in world space: the strand's direction once made tangent
#ifdef TEXTURED
uniform sampler2D u_tex;
out float v_strand_mean;  // the texture's luminance around here (a coarse mip level), once a vertex
#endif
#endif

mat4 joint(float j) {
    int r = int(j + 0.5);
    return mat4(texelFetch(u_joints, ivec2(0, r), 0), texelFetch(u_joints, ivec2(1, r), 0),
                texelFetch(u_joints, ivec2(2, r), 0), texelFetch(u_joints, ivec2(3, r), 0));
}

void main() {
    mat4 m = u_model;
    if (u_skinned) {
        m = in_weights.x * joint(in_joints.x) + in_weights.y * joint(in_joints.y)
          + in_weights.z * joint(in_joints.z) + in_weights.w * joint(in_joints.w);
    }
    vec4 w = m * vec4(in_pos, 1.0);
    v_pos = w.xyz;
    v_nrm = mat3(m) * in_nrm;  // rigid bones: the upper 3x3 is a rotation (times a uniform scale)
    v_uv = in_uv;
#ifdef HAIR
    v_strand = mat3(m) * (in_pos - u_hair_crown);
#ifdef TEXTURED
    v_strand_mean = max(dot(textureLod(u_tex, in_uv, 4.0).rgb, vec3(0.3, 0.59, 0.11)), 1e-3);
#endif
#endif
#ifdef WRINKLES
    v_side = clamp(0.5 + in_pos.x * 100.0, 0.0, 1.0);
    v_lateral = smoothstep(u_lateral_band.x, u_lateral_band.y, abs(in_pos.x));
#endif
    gl_Position = u_view_proj * w;
}
