// The declarations autofuse's kernels rely on, as CANN's headers make them: compiled
// (g++ -fsyntax-only) against Huawei's real headers (third_party/ascend-api) and against
// autofuse's emulator (autofuse/emulator/include) by tests/test_api_check.py. Each check is a
// static_assert on what a call does in both: which object it may be called on (const-ness), the
// type it returns, the layout of a struct the host fills. Where the emulator's declaration parts
// from CANN's, this stops compiling against one of the two, so the emulator cannot accept what
// the device compiler would refuse (GlobalTensor::SetValue on a const tensor, say) unnoticed.
// The kernels themselves are the probe of how each call is written: every generated source is
// compiled against both header sets (test_kernel_verify.py, test_api_check.py).
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernel_operator.h"
#include "kernel_tiling/kernel_tiling.h"
#include "lib/matmul_intf.h"

using namespace AscendC;

namespace probe {

template <typename... T>
using void_t = void;

// -- GlobalTensor<T> --------------------------------------------------------------------------
template <typename G, typename = void> struct CanSetValue : std::false_type {};
template <typename G>
struct CanSetValue<G, std::void_t<decltype(std::declval<G>().SetValue(uint64_t{}, float{}))>> : std::true_type {};
static_assert(CanSetValue<GlobalTensor<float>&>::value, "GlobalTensor::SetValue(offset, value)");
static_assert(!CanSetValue<const GlobalTensor<float>&>::value, "GlobalTensor::SetValue is not const");

template <typename G, typename = void> struct CanSetBuffer : std::false_type {};
template <typename G>
struct CanSetBuffer<G, std::void_t<decltype(std::declval<G>().SetGlobalBuffer(std::declval<__gm__ float*>(), uint64_t{}))>>
    : std::true_type {};
static_assert(CanSetBuffer<GlobalTensor<float>&>::value, "GlobalTensor::SetGlobalBuffer(buffer, size)");
static_assert(!CanSetBuffer<const GlobalTensor<float>&>::value, "GlobalTensor::SetGlobalBuffer is not const");

static_assert(std::is_same<decltype(std::declval<const GlobalTensor<float>&>().GetValue(uint64_t{})), float>::value,
              "GlobalTensor::GetValue(offset) const -> T");
static_assert(std::is_same<decltype(std::declval<const GlobalTensor<half>&>()[uint64_t{}]), GlobalTensor<half>>::value,
              "GlobalTensor::operator[](offset) const -> GlobalTensor<T>");

// -- LocalTensor<T> ---------------------------------------------------------------------------
template <typename L, typename = void> struct CanSetLocal : std::false_type {};
template <typename L>
struct CanSetLocal<L, std::void_t<decltype(std::declval<L>().SetValue(uint32_t{}, float{}))>> : std::true_type {};
static_assert(CanSetLocal<const LocalTensor<float>&>::value, "LocalTensor::SetValue is const");
static_assert(std::is_same<decltype(std::declval<const LocalTensor<float>&>().GetValue(uint32_t{})), float>::value,
              "LocalTensor::GetValue(index) const -> T");
static_assert(std::is_same<decltype(std::declval<const LocalTensor<float>&>()[uint32_t{}]), LocalTensor<float>>::value,
              "LocalTensor::operator[](offset) const -> LocalTensor<T>");
static_assert(std::is_same<decltype(std::declval<const LocalTensor<half>&>().template ReinterpretCast<int16_t>()),
                           LocalTensor<int16_t>>::value,
              "LocalTensor::ReinterpretCast<U>() const -> LocalTensor<U>");

// -- TPipe, TQue, TBuf ------------------------------------------------------------------------
using InQue = TQue<TPosition::VECIN, 2>;
using OutQue = TQue<TPosition::VECOUT, 1>;
using Calc = TBuf<TPosition::VECCALC>;
static_assert(std::is_same<decltype(std::declval<TPipe&>().InitBuffer(std::declval<InQue&>(), uint8_t{}, uint32_t{})),
                           bool>::value, "TPipe::InitBuffer(que, num, len) -> bool");
static_assert(std::is_same<decltype(std::declval<TPipe&>().InitBuffer(std::declval<Calc&>(), uint32_t{})), bool>::value,
              "TPipe::InitBuffer(buf, len) -> bool");
static_assert(std::is_same<decltype(std::declval<InQue&>().template AllocTensor<float>()), LocalTensor<float>>::value,
              "TQue::AllocTensor<T>() -> LocalTensor<T>");
static_assert(std::is_same<decltype(std::declval<OutQue&>().EnQue(std::declval<const LocalTensor<float>&>())), bool>::value,
              "TQue::EnQue(const LocalTensor<T>&) -> bool");
static_assert(std::is_same<decltype(std::declval<InQue&>().template DeQue<float>()), LocalTensor<float>>::value,
              "TQue::DeQue<T>() -> LocalTensor<T>");
template <typename Q, typename = void> struct CanFreeTemporary : std::false_type {};
template <typename Q>
struct CanFreeTemporary<Q, std::void_t<decltype(std::declval<Q&>().FreeTensor(std::declval<LocalTensor<float>>()))>>
    : std::true_type {};
static_assert(!CanFreeTemporary<InQue>::value, "TQue::FreeTensor takes LocalTensor<T>& (not a temporary)");
static_assert(std::is_same<decltype(std::declval<Calc&>().template Get<float>()), LocalTensor<float>>::value,
              "TBuf::Get<T>() -> LocalTensor<T>");
static_assert(std::is_same<decltype(std::declval<Calc&>().template Get<float>(uint32_t{})), LocalTensor<float>>::value,
              "TBuf::Get<T>(len) -> LocalTensor<T>");

// -- system values ------------------------------------------------------------------------------
static_assert(std::is_same<decltype(GetBlockIdx()), int64_t>::value, "GetBlockIdx() -> int64_t");
static_assert(std::is_same<decltype(GetBlockNum()), int64_t>::value, "GetBlockNum() -> int64_t");

// -- structs the kernels and hosts fill -------------------------------------------------------------
static_assert(std::is_same<decltype(DataCopyExtParams{}.blockCount), uint16_t>::value, "DataCopyExtParams::blockCount");
static_assert(std::is_same<decltype(DataCopyExtParams{}.blockLen), uint32_t>::value, "DataCopyExtParams::blockLen");
static_assert(std::is_same<decltype(DataCopyExtParams{}.srcStride), uint32_t>::value, "DataCopyExtParams::srcStride");
static_assert(std::is_same<decltype(DataCopyExtParams{}.dstStride), uint32_t>::value, "DataCopyExtParams::dstStride");
static_assert(std::is_same<decltype(DataCopyPadExtParams<float>{}.isPad), bool>::value, "DataCopyPadExtParams::isPad");
static_assert(std::is_same<decltype(DataCopyPadExtParams<float>{}.paddingValue), float>::value,
              "DataCopyPadExtParams<T>::paddingValue");

using AscendC::tiling::TCubeTiling;
static_assert(sizeof(TCubeTiling) == 50 * sizeof(int32_t), "TCubeTiling: CANN's 50 int32 fields");
static_assert(offsetof(TCubeTiling, usedCoreNum) == 0 && offsetof(TCubeTiling, M) == 4 && offsetof(TCubeTiling, Ka) == 12 &&
              offsetof(TCubeTiling, baseM) == 32 && offsetof(TCubeTiling, isBias) == 60 &&
              offsetof(TCubeTiling, dbL0C) == 128 && offsetof(TCubeTiling, ALayoutInfoB) == 132 &&
              offsetof(TCubeTiling, BatchNum) == 192 && offsetof(TCubeTiling, mxTypePara) == 196,
              "TCubeTiling: CANN's field order");

// -- vector instructions, count form: the exact function type, in both ----------------------------
using L = LocalTensor<float>;
using Binary = void (*)(const L&, const L&, const L&, const int32_t&);
using Unary = void (*)(const L&, const L&, const int32_t&);
using Fill = void (*)(const L&, const float&, const int32_t&);
#define PROBE_BINARY(Name) [[maybe_unused]] static Binary const k##Name = &Name<float>;
#define PROBE_UNARY(Name) [[maybe_unused]] static Unary const k##Name = &Name<float>;
PROBE_BINARY(Add) PROBE_BINARY(Sub) PROBE_BINARY(Mul) PROBE_BINARY(Div) PROBE_BINARY(Max) PROBE_BINARY(Min)
PROBE_UNARY(Exp) PROBE_UNARY(Ln) PROBE_UNARY(Sqrt) PROBE_UNARY(Rsqrt) PROBE_UNARY(Reciprocal) PROBE_UNARY(Abs)
PROBE_UNARY(Relu)
[[maybe_unused]] static Fill const kDuplicate = &Duplicate<float>;
#undef PROBE_BINARY
#undef PROBE_UNARY

// The scalar forms are overloaded several ways in CANN (the scalar's own type may differ from the
// tensor's), so they are checked by the call the kernels make: (dst, src, T scalar, int32_t count).
static_assert(std::is_same<decltype(Adds(std::declval<const L&>(), std::declval<const L&>(), float{}, int32_t{})),
                           void>::value, "Adds(dst, src, scalar, count)");
static_assert(std::is_same<decltype(Muls(std::declval<const L&>(), std::declval<const L&>(), float{}, int32_t{})),
                           void>::value, "Muls(dst, src, scalar, count)");
static_assert(std::is_same<decltype(Maxs(std::declval<const L&>(), std::declval<const L&>(), float{}, int32_t{})),
                           void>::value, "Maxs(dst, src, scalar, count)");
static_assert(std::is_same<decltype(Mins(std::declval<const L&>(), std::declval<const L&>(), float{}, int32_t{})),
                           void>::value, "Mins(dst, src, scalar, count)");

// -- every other call the generated kernels make, written as they write it ----------------------------
// (a kernel never runs here: this function is only compiled)
[[maybe_unused]] static void Calls(L f32, LocalTensor<half> f16, LocalTensor<uint8_t> mask, GlobalTensor<float> gm,
                                   GlobalTensor<uint8_t> gm8, LocalTensor<uint8_t> u8, GM_ADDR workspace, uint32_t n)
{
    PipeBarrier<PIPE_V>();
    PipeBarrier<PIPE_ALL>();
    DataCopy(f32, gm, n);
    DataCopy(gm, f32, n);
    DataCopyExtParams params{1, n, 0, 0, 0};
#if __NPU_ARCH__ != 2002  // 300I: CANN compiles DataCopyPad (deprecated, unsupported at run time), the
                          // emulator refuses it; the generator never writes it for that target
    DataCopyPad(gm, f32, params);
    DataCopyPad(gm8, u8, params);
    DataCopyPad(f32, gm, params, DataCopyPadExtParams<float>{false, 0, 0, 0});
#endif
    event_t id = static_cast<event_t>(GetTPipePtr()->FetchEventID(HardEvent::V_S));
    SetFlag<HardEvent::V_S>(id);
    WaitFlag<HardEvent::V_S>(id);
    SetFlag<HardEvent::S_V>(id);
    WaitFlag<HardEvent::S_V>(id);
    SetFlag<HardEvent::MTE2_V>(id);
    WaitFlag<HardEvent::MTE2_V>(id);
    SyncAll();
    (void)GetSubBlockIdx();
    (void)GetTaskRatio();
    (void)GetSysWorkSpacePtr();
    gm.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(GetUserWorkspace(workspace) + 0), n);
    Cast(f32, f16, RoundMode::CAST_NONE, n);
    Cast(f16, f32, RoundMode::CAST_ROUND, n);
    Cast(f32, f32.ReinterpretCast<half>(), RoundMode::CAST_NONE, n);
    Compare(mask, f32, f32, CMPMODE::NE, n);
    Compares(mask, f32, 0.0f, CMPMODE::EQ, n);
    Select(f32, mask, f32, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, n);
    Select(f32, mask, f32, f32, SELMODE::VSEL_TENSOR_TENSOR_MODE, n);
    ReduceSum(f32, f32[n], f32, static_cast<int32_t>(n));
    ReduceMax(f32, f32[n], f32, static_cast<int32_t>(n), false);
    ReduceMin(f32, f32[n], f32, static_cast<int32_t>(n), false);
    LeakyRelu(f32, f32, 0.01f, n);
    Erf(f32, f32, n);
    Tanh(f32, f32, n);
    Sin(f32, f32, n);
    Cos(f32, f32, n);
}

// The Matmul API, as the MatMul-epilogue kernels use it (the cube side of a MIX kernel).
using Mm = Matmul<MatmulType<TPosition::GM, CubeFormat::ND, half>, MatmulType<TPosition::GM, CubeFormat::ND, half>,
                  MatmulType<TPosition::GM, CubeFormat::ND, float>, MatmulType<TPosition::GM, CubeFormat::ND, float>>;
[[maybe_unused]] static void MatmulCalls(TPipe& pipe, Mm& mm, const AscendC::tiling::TCubeTiling& tiling,
                                         GlobalTensor<half> a, GlobalTensor<half> b, GlobalTensor<float> c, int m, int n)
{
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
    mm.SetTensorA(a[0]);
    mm.SetTensorB(b[n]);
    mm.SetTail(m, n);
    mm.IterateAll(c[0]);
    mm.End();
}

}  // namespace probe
