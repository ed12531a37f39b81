// stub_fun.h -- STAND-IN written for the ascend-api kit; this is not Huawei's file.
// The real stub_fun.h (the generated table of CCE intrinsic prototypes that asc-tools'
// tikicpulib.h, intri_fun.h, ... include in CPU-debug mode) is not in any open repository: it
// ships only in Huawei's binary package cann-asc-tools-cpudebug-deps-lib_*.tar.gz, which
// asc-tools' cmake/third_party/cpudebug.cmake downloads. This file stands in for it so that the
// real AscendC:: headers can be compiled with -fsyntax-only. Each intrinsic is a variadic
// template that accepts any arguments: calls at this level (made by Huawei's impl/ headers, not by
// the kernels under test) are not type-checked, and nothing here can be linked or run.
// To add a missing intrinsic, add one line like the ones below.
#ifndef AF_STUB_FUN_H
#define AF_STUB_FUN_H
#include "stub_fun_types.h"
#include "stub_fun_extra.h"

// intrinsics whose result is not used
template <typename... AfArgs> inline void AscendCBufAbsAddr(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufAlloc(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufDeque(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufEnque(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufFree(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufGet(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCBufInit(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCQueCreate(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCRecordPoolHierarchy(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCTBufPoolInit(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCTBufPoolResetCheck(AfArgs&&...) {}
template <typename... AfArgs> inline void AscendCUpdateTbufPoolStatus(AfArgs&&...) {}
template <typename... AfArgs> inline void __ib_set_stub(AfArgs&&...) {}
template <typename... AfArgs> inline void __ib_wait_stub(AfArgs&&...) {}
template <typename... AfArgs> inline void __sync_all_stub(AfArgs&&...) {}
template <typename... AfArgs> inline void broadcast_ub_to_cc(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_cbuf_to_bt(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_cbuf_to_fbuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_cbuf_to_gm(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_cbuf_to_ubuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_cbuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_cbuf_multi_nd2nz_b16(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_cbuf_multi_nd2nz_b32s(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_cbuf_multi_nd2nz_b8(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_ubuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_ubuf_align_b16(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_ubuf_align_b32(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_gm_to_ubuf_align_b8(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_matrix_cc_to_gm(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_matrix_cc_to_ubuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_matrix_ubuf_to_cc(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_cbuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_gm(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_gm_align_b16(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_gm_align_b32(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_gm_align_b8(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_ubuf_to_ubuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_vector_cc_to_ubuf(AfArgs&&...) {}
template <typename... AfArgs> inline void copy_vector_ubuf_to_cc(AfArgs&&...) {}
template <typename... AfArgs> inline void create_ca_matrix(AfArgs&&...) {}
template <typename... AfArgs> inline void create_cb_matrix(AfArgs&&...) {}
template <typename... AfArgs> inline void create_cbuf_matrix(AfArgs&&...) {}
template <typename... AfArgs> inline void dc_preload(AfArgs&&...) {}
template <typename... AfArgs> inline void dcci(AfArgs&&...) {}
template <typename... AfArgs> inline void dsb(AfArgs&&...) {}
template <typename... AfArgs> inline void ffts_cross_core_sync(AfArgs&&...) {}
template <typename... AfArgs> inline void hset_flag(AfArgs&&...) {}
template <typename... AfArgs> inline void hwait_flag(AfArgs&&...) {}
template <typename... AfArgs> inline void img2colv2_cbuf_to_ca(AfArgs&&...) {}
template <typename... AfArgs> inline void img2colv2_cbuf_to_ca_s4(AfArgs&&...) {}
template <typename... AfArgs> inline void img2colv2_cbuf_to_cb(AfArgs&&...) {}
template <typename... AfArgs> inline void img2colv2_cbuf_to_cb_s4(AfArgs&&...) {}
template <typename... AfArgs> inline void ld_dev(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_ca(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_ca_s4(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_cb(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_cb_s4(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_cb_sp(AfArgs&&...) {}
template <typename... AfArgs> inline void load_cbuf_to_cb_transpose_s4(AfArgs&&...) {}
template <typename... AfArgs> inline void load_gm_to_cb_unzip(AfArgs&&...) {}
template <typename... AfArgs> inline void load_gm_to_cbuf_unzip(AfArgs&&...) {}
template <typename... AfArgs> inline void load_unzip_index_from_gm(AfArgs&&...) {}
template <typename... AfArgs> inline void mad(AfArgs&&...) {}
template <typename... AfArgs> inline void mad_sp(AfArgs&&...) {}
template <typename... AfArgs> inline void pipe_barrier(AfArgs&&...) {}
template <typename... AfArgs> inline void preload(AfArgs&&...) {}
template <typename... AfArgs> inline void scatter_vnchwconv_b16(AfArgs&&...) {}
template <typename... AfArgs> inline void scatter_vnchwconv_b32(AfArgs&&...) {}
template <typename... AfArgs> inline void scatter_vnchwconv_b8(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_0(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_1(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_18(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_19(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_2(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_20(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_21(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_3(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_4(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_5(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_6(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_7(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_8(AfArgs&&...) {}
template <typename... AfArgs> inline void set_aipp_spr_9(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_add(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_bf16(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_f16(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_f32(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_max(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_min(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_none(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_s16(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_s32(AfArgs&&...) {}
template <typename... AfArgs> inline void set_atomic_s8(AfArgs&&...) {}
template <typename... AfArgs> inline void set_block_dim(AfArgs&&...) {}
template <typename... AfArgs> inline void set_cmpmask(AfArgs&&...) {}
template <typename... AfArgs> inline void set_core_type(AfArgs&&...) {}
template <typename... AfArgs> inline void set_ctrl(AfArgs&&...) {}
template <typename... AfArgs> inline void set_data_exp_0(AfArgs&&...) {}
template <typename... AfArgs> inline void set_data_exp_1(AfArgs&&...) {}
template <typename... AfArgs> inline void set_data_exp_2(AfArgs&&...) {}
template <typename... AfArgs> inline void set_data_exp_3(AfArgs&&...) {}
template <typename... AfArgs> inline void set_deqscale(AfArgs&&...) {}
template <typename... AfArgs> inline void set_ffts_base_addr(AfArgs&&...) {}
template <typename... AfArgs> inline void set_flag(AfArgs&&...) {}
template <typename... AfArgs> inline void set_fmatrix(AfArgs&&...) {}
template <typename... AfArgs> inline void set_fmatrix_b(AfArgs&&...) {}
template <typename... AfArgs> inline void set_fpc(AfArgs&&...) {}
template <typename... AfArgs> inline void set_l1_3d_size(AfArgs&&...) {}
template <typename... AfArgs> inline void set_l3d_rpt(AfArgs&&...) {}
template <typename... AfArgs> inline void set_mask_count(AfArgs&&...) {}
template <typename... AfArgs> inline void set_mask_norm(AfArgs&&...) {}
template <typename... AfArgs> inline void set_mov_pad_val(AfArgs&&...) {}
template <typename... AfArgs> inline void set_nd_para(AfArgs&&...) {}
template <typename... AfArgs> inline void set_padding(AfArgs&&...) {}
template <typename... AfArgs> inline void set_quant_pre(AfArgs&&...) {}
template <typename... AfArgs> inline void set_st_atomic_cfg(AfArgs&&...) {}
template <typename... AfArgs> inline void set_va_reg_sb(AfArgs&&...) {}
template <typename... AfArgs> inline void set_vector_mask(AfArgs&&...) {}
template <typename... AfArgs> inline void st_dev(AfArgs&&...) {}
template <typename... AfArgs> inline void trap(AfArgs&&...) {}
template <typename... AfArgs> inline void v4dtrans(AfArgs&&...) {}
template <typename... AfArgs> inline void vabs(AfArgs&&...) {}
template <typename... AfArgs> inline void vadd(AfArgs&&...) {}
template <typename... AfArgs> inline void vadddeqrelu(AfArgs&&...) {}
template <typename... AfArgs> inline void vadds(AfArgs&&...) {}
template <typename... AfArgs> inline void vand(AfArgs&&...) {}
template <typename... AfArgs> inline void vbrcb(AfArgs&&...) {}
template <typename... AfArgs> inline void vcadd(AfArgs&&...) {}
template <typename... AfArgs> inline void vcbd_s322s16(AfArgs&&...) {}
template <typename... AfArgs> inline void vcgadd(AfArgs&&...) {}
template <typename... AfArgs> inline void vcgmax(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmax(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmin(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_eq(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_ge(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_gt(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_le(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_lt(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpv_ne(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_eq(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_ge(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_gt(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_le(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_lt(AfArgs&&...) {}
template <typename... AfArgs> inline void vcmpvs_ne(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162f32(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162s32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162s32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162s32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162s32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_bf162s32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_deq(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162f32(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s16a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s16c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s16f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s16r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s16z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s4z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162s8z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f162u8z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322bf16a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322bf16c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322bf16f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322bf16r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322bf16z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16o(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f16z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322f32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s16a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s16c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s16f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s16r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s16z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s64a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s64c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s64f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s64r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_f322s64z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f16z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s162f32(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322f32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322s16(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s322s64(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s42f16(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642f32a(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642f32c(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642f32f(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642f32r(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642f32z(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s642s32(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_s82f16(AfArgs&&...) {}
template <typename... AfArgs> inline void vconv_u82f16(AfArgs&&...) {}
template <typename... AfArgs> inline void vcopy(AfArgs&&...) {}
template <typename... AfArgs> inline void vdiv(AfArgs&&...) {}
template <typename... AfArgs> inline void vector_dup(AfArgs&&...) {}
template <typename... AfArgs> inline void vexp(AfArgs&&...) {}
template <typename... AfArgs> inline void vgather(AfArgs&&...) {}
template <typename... AfArgs> inline void vld_va_reg(AfArgs&&...) {}
template <typename... AfArgs> inline void vln(AfArgs&&...) {}
template <typename... AfArgs> inline void vlrelu(AfArgs&&...) {}
template <typename... AfArgs> inline void vmax(AfArgs&&...) {}
template <typename... AfArgs> inline void vmaxs(AfArgs&&...) {}
template <typename... AfArgs> inline void vmin(AfArgs&&...) {}
template <typename... AfArgs> inline void vmins(AfArgs&&...) {}
template <typename... AfArgs> inline void vmul(AfArgs&&...) {}
template <typename... AfArgs> inline void vmulconv_f162s8(AfArgs&&...) {}
template <typename... AfArgs> inline void vmulconv_f162u8(AfArgs&&...) {}
template <typename... AfArgs> inline void vmuls(AfArgs&&...) {}
template <typename... AfArgs> inline void vnot(AfArgs&&...) {}
template <typename... AfArgs> inline void vor(AfArgs&&...) {}
template <typename... AfArgs> inline void vpadding(AfArgs&&...) {}
template <typename... AfArgs> inline void vrec(AfArgs&&...) {}
template <typename... AfArgs> inline void vreduce(AfArgs&&...) {}
template <typename... AfArgs> inline void vreducev2(AfArgs&&...) {}
template <typename... AfArgs> inline void vrelu(AfArgs&&...) {}
template <typename... AfArgs> inline void vrsqrt(AfArgs&&...) {}
template <typename... AfArgs> inline void vscatter(AfArgs&&...) {}
template <typename... AfArgs> inline void vsel(AfArgs&&...) {}
template <typename... AfArgs> inline void vshr(AfArgs&&...) {}
template <typename... AfArgs> inline void vsqrt(AfArgs&&...) {}
template <typename... AfArgs> inline void vsub(AfArgs&&...) {}
template <typename... AfArgs> inline void vtranspose(AfArgs&&...) {}
template <typename... AfArgs> inline void wait_flag(AfArgs&&...) {}
template <typename... AfArgs> inline void wait_flag_dev(AfArgs&&...) {}
// intrinsics whose result is used
template <typename... AfArgs> inline int64_t bcnt0(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t bcnt1(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t clz(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline half conv_f322f16o(AfArgs&&...) { return half(); }
template <typename... AfArgs> inline int32_t conv_f322s32a(AfArgs&&...) { return int32_t(); }
template <typename... AfArgs> inline int32_t conv_f322s32c(AfArgs&&...) { return int32_t(); }
template <typename... AfArgs> inline int32_t conv_f322s32f(AfArgs&&...) { return int32_t(); }
template <typename... AfArgs> inline int32_t conv_f322s32r(AfArgs&&...) { return int32_t(); }
template <typename... AfArgs> inline int64_t get_acc_val(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_arch_ver(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_block_idx(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_block_num(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline uint64_t get_ctrl(AfArgs&&...) { return uint64_t(); }
template <typename... AfArgs> inline int64_t get_icache_prl_st(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline uint64_t get_imm(AfArgs&&...) { return uint64_t(); }
template <typename... AfArgs> inline int64_t get_max_min_cnt(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_pc(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_rsvd_cnt(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t get_st_atomic_cfg(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline uint64_t get_status(AfArgs&&...) { return uint64_t(); }
template <typename... AfArgs> inline int64_t get_vms4_sr(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline uint64_t sbitset0(AfArgs&&...) { return uint64_t(); }
template <typename... AfArgs> inline uint64_t sbitset1(AfArgs&&...) { return uint64_t(); }
template <typename... AfArgs> inline int64_t sff0(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t sff1(AfArgs&&...) { return int64_t(); }
template <typename... AfArgs> inline int64_t sflbits(AfArgs&&...) { return int64_t(); }
#endif
