// Blocked, multithreaded GEMM driver shared by every matmul in this directory.
//
// C (M,N) [+]= A (M,K) * B (K,N) where A and B are never read directly: a PackA functor
// writes one A micro-panel and a PackB functor writes a B block in the micro-kernel's
// format, so the same loop nest serves fp32, bf16, int8 and on-the-fly 4-bit/int8
// dequantisation (the dequantised weight only ever exists as one KC x NC block in cache).
//
// Loop nest per thread (the A micro-panel in use stays in L1, B micro-panels stream from L2):
//   pc over K in KC blocks               -> pack the thread's rows of A once (m_t x kc), unless
//                                           the kernel reads fp32 rows of A in place or A is shared
//     jc over the thread's columns in NC  -> pack B block (kc x nc, L2-resident)
//       ir over the thread's rows in MR
//         jr over nc in NR                -> micro-kernel on C tile (ir, jc + jr)
// Threads split N first (each packs only its own B), then M when N has too few tiles, or M first when
// A is packed and the larger operand; small products run on the calling thread (threads_for in gemv.h).
// A wide N is claimed in column units (then the loop nest above runs per unit) rather than cut in equal
// halves, so a slower core does less of it.
// Threads that split only N share one packed A (SharedA): each micro-panel is packed once, by the first
// thread to reach it, and every thread starts its row loop at a different panel (fp16 4-bit GEMM at
// M = 256, N = K = 768: packing A took 9-10% of the CPU time with both threads packing all of it, 5.5-6%
// shared). An A larger than the shared budget is shared through a ring of K blocks (the head's
// dX = dlogits W at K = 50257: 51 MB of fp32 A).
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "cpu/cpu.h"
#include "gemm/arena.h"
#include "gemm/gemv.h"
#include "gemm/ukernel.h"

namespace nq::gemm {

constexpr int64_t kNC = 512;               // max columns per B block
constexpr int64_t kBPanelBytes = 384 * 4;  // bytes of one B micro-panel column: KC * element size

// KC in k elements: a B micro-panel column is 1.5 KiB whatever the element size (384 fp32,
// 768 bf16, 1536 int8): the A micro-panel (mr x kc) stays in L1, the B block (kc x NC, <= 768 KiB)
// in L2, and C is re-read only every KC of K (measured: 384 beat 256 at K = 768).
inline int64_t kc_for(const Ukernel& uk) { return kBPanelBytes / fmt_bytes(uk.b_fmt); }

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Columns per B block: a whole number of micro-panels, so only the last block has an edge.
inline int64_t nc_for(const Ukernel& uk) { return kNC / uk.nr * uk.nr; }

// Offset (in elements) of (row, k) inside a micro-panel of `rows` rows.
inline int64_t panel_index(int rows, int kgroup, int64_t row, int64_t k) {
  return ((k / kgroup) * rows + row) * kgroup + (k % kgroup);
}

// Geometry a packer needs to lay out its block.
struct PackGeom {
  int rows;              // mr for A, nr for B (rows of one micro-panel)
  int kgroup;
  int64_t kcp;           // kc rounded up to kgroup
  int64_t panel_elems;   // elements per micro-panel = rows * kcp
};

// A(i0, k0) when the micro-kernel may read A in place (a PackA with direct(), see pack.h),
// else nullptr; lda receives A's row stride.
template <class P>
auto direct_a(const P& p, int64_t i0, int64_t k0, int64_t& lda, int) -> decltype(p.direct(i0, k0, lda)) {
  return p.direct(i0, k0, lda);
}
template <class P>
const float* direct_a(const P&, int64_t, int64_t, int64_t&, long) {
  return nullptr;
}

// A packer whose micro-panels were all packed before the call (prepack_a below) has prepacked(i0, k0): the
// driver then reads that panel and packs nothing.
template <class P, class = void>
struct has_prepacked : std::false_type {};
template <class P>
struct has_prepacked<P, std::void_t<decltype(std::declval<const P&>().prepacked(int64_t(0), int64_t(0)))>>
    : std::true_type {};

// Likewise a B packer with prepacked_b(k0, j0) (prepack_b below): B micro-panel (K block of k0, columns j0..).
template <class P, class = void>
struct has_prepacked_b : std::false_type {};
template <class P>
struct has_prepacked_b<P, std::void_t<decltype(std::declval<const P&>().prepacked_b(int64_t(0), int64_t(0)))>>
    : std::true_type {};

// True when a packer only copies fp32 (see pack.h): no conversion, rounding or dequantisation.
template <class P>
auto plain_f32(const P& p, int) -> decltype(p.plain_f32()) {
  return p.plain_f32();
}
template <class P>
bool plain_f32(const P&, long) {
  return false;
}

// Bytes of packed A that run_gemm shares among its threads: all K blocks when they fit, else a ring of K blocks.
constexpr int64_t kSharedABytes = int64_t(8) << 20;

// A packed once for a region whose threads all need every row (they split only N), in the calling
// thread's arena: the row panels of `ring` K blocks, block kb in slot kb % ring. Threads drift apart by
// several K blocks on a loaded box (a ring of 4 K blocks without a bound left a third of the panels to
// private copies), so the ring holds every K block when it fits the budget. Nobody waits: a panel that is
// not ready is packed into its slot by the first thread to claim it, or into the claimer's own buffer
// while another thread packs it; a thread a whole ring ahead of another (its slot for kb still holds
// kb - ring, which that thread may be reading) packs block kb into its own buffer.
struct SharedA {
  uint8_t* base = nullptr;
  std::atomic<int64_t>* tag = nullptr;  // per slot panel: 2 kb + 1 being packed for block kb, 2 kb + 2 ready
  std::atomic<int64_t>* done = nullptr;  // per thread, one cache line each: K blocks it has finished
  int64_t m_tiles = 0, ring = 0;
  size_t panel_bytes = 0;
  int threads = 0;

  static constexpr size_t kLine = 64 / sizeof(std::atomic<int64_t>);

  SharedA() = default;
  SharedA(int64_t ring_, int64_t m_tiles_, size_t panel_bytes_, int threads_)
      : m_tiles(m_tiles_), ring(ring_), panel_bytes(panel_bytes_), threads(threads_) {
    const size_t n = size_t(ring * m_tiles), words = (n + kLine - 1) / kLine * kLine + size_t(threads) * kLine;
    auto* mem = static_cast<uint8_t*>(arena_get(kSlotAShared, words * sizeof(std::atomic<int64_t>) + n * panel_bytes));
    tag = reinterpret_cast<std::atomic<int64_t>*>(mem);
    for (size_t i = 0; i < words; ++i) new (&tag[i]) std::atomic<int64_t>(0);
    done = tag + (words - size_t(threads) * kLine);
    base = mem + words * sizeof(std::atomic<int64_t>);
  }

  // Ring K blocks of `m_tiles` panels that fit the budget (all `k_blocks` when they do).
  static int64_t ring_for(int64_t k_blocks, int64_t m_tiles, size_t panel_bytes) {
    return std::min(k_blocks, kSharedABytes / (m_tiles * int64_t(panel_bytes)));
  }

  // True when K block kb may use its slots: every thread has finished block kb - ring.
  bool open(int64_t kb) const {
    for (int t = 0; t < threads && kb >= ring; ++t)
      if (done[size_t(t) * kLine].load(std::memory_order_acquire) <= kb - ring) return false;
    return true;
  }

  void finish(int thread, int64_t kb) const { done[size_t(thread) * kLine].store(kb + 1, std::memory_order_release); }

  // Row panel q of K block kb (open(kb)), packed by pack(dst) if nobody has yet.
  template <class Pack>
  const uint8_t* get(int64_t kb, int64_t q, uint8_t* own, const Pack& pack) const {
    const size_t i = size_t(kb % ring * m_tiles + q);
    uint8_t* slot = base + i * panel_bytes;
    const int64_t packing = 2 * kb + 1, ready = 2 * kb + 2;
    int64_t v = tag[i].load(std::memory_order_acquire);
    if (v == ready) return slot;
    // An older tag is an earlier block's, which nobody reads any more (open).
    if (v < packing && tag[i].compare_exchange_strong(v, packing, std::memory_order_acquire)) {
      pack(slot);
      tag[i].store(ready, std::memory_order_release);
      return slot;
    }
    if (v == ready) return slot;  // the failed claim loaded the current tag
    pack(own);
    return own;
  }
};

// One A micro-panel of `rows` rows for K block (k0, kc) at ap: zero-filled first when rows or the rounded
// kc leave padding (the kernel reads whole panels), then packed.
template <class PackA>
void pack_a_panel(const PackA& pack_a, uint8_t* ap, const PackGeom& ga, int esa, int64_t i0, int rows, int64_t k0,
                  int64_t kc) {
  if (ga.kcp != kc || rows != ga.rows) std::memset(ap, 0, size_t(ga.panel_elems * esa));
  pack_a(ap, ga, i0, rows, k0, kc);
}

// No-op epilogue for run_gemm.
struct NoEpilogue {
  template <class Acc>
  void operator()(Acc*, int64_t, int64_t, int64_t, int, int) const {}
};

// pack_a(void* panel, const PackGeom&, int64_t i0, int mrows, int64_t k0, int64_t kc)
// pack_b(void* block, const PackGeom&, int64_t k0, int64_t kc, int64_t n0, int64_t nc)
//   block = ceil(nc/nr) micro-panels of panel_elems each; only the valid region needs
//   writing: the driver zero-fills blocks and panels that have padding.
// epilogue(Acc* tile, int64_t ldc, int64_t i0, int64_t j0, int rows, int cols) runs once per
// C tile right after its last K block, while the tile is still in cache.
template <class Acc, class PackA, class PackB, class Epilogue = NoEpilogue>
void run_gemm(const Ukernel& uk, int64_t M, int64_t N, int64_t K, const PackA& pack_a,
              const PackB& pack_b, Acc* C, int64_t ldc, bool accumulate,
              const Epilogue& epilogue = Epilogue()) {
  const int mr = uk.mr, nr = uk.nr, kg = uk.kgroup;
  const int64_t KC = kc_for(uk), NC = nc_for(uk);
  const int esa = fmt_bytes(uk.a_fmt), esb = fmt_bytes(uk.b_fmt);
  const int64_t m_tiles = (M + mr - 1) / mr, n_tiles = (N + nr - 1) / nr;
  // Threads split N, so each packs only its share of B, unless A is packed too (not read in place) and
  // has more rows than B has columns: then splitting M duplicates the smaller pack instead (dW = dY^T X
  // with 3072 rows and 768 columns spent 15% of its time packing A twice).
  int64_t lda0 = 0;
  constexpr bool a_pre = has_prepacked<PackA>::value;
  constexpr bool b_pre = has_prepacked_b<PackB>::value;
  const bool a_packed = !a_pre && !(uk.run_strided && direct_a(pack_a, 0, 0, lda0, 0) != nullptr);
  const bool split_m = a_packed && M > N;
  // ~2MNK flops at ~60 GFLOP/s a thread ~ MNK/2 bytes at 20 GB/s. fp32 with packed A (dW) runs ~110
  // GFLOP/s on one thread, so a region (~0.1 ms to wake a passive worker on a VM) pays off only at twice
  // the work: 16x768x768 dW took 60-80 GFLOP/s on 2 threads, 106-118 on 1.
  const bool fast_f32 = a_packed && plain_f32(pack_a, 0) && plain_f32(pack_b, 0);
  const int nt = threads_for(M * N * K / (fast_f32 ? 4 : 2));
  const int tm0 = split_m ? int(std::min<int64_t>(nt, m_tiles)) : 1;
  const int tn = int(std::min<int64_t>(std::max(1, nt / tm0), n_tiles));
  const int tm = int(std::min<int64_t>(std::max(1, nt / tn), m_tiles));

  const int64_t kcmax = round_up(std::min(KC, K), kg), k_blocks = (K + KC - 1) / KC;
  const size_t a_panel_bytes = size_t(mr * kcmax * esa);
  // A ring of one K block would leave threads no room to drift apart: every other block private.
  const int64_t ring = SharedA::ring_for(k_blocks, m_tiles, a_panel_bytes);
  const bool share_a = a_packed && tm == 1 && tn > 1 && ring >= std::min<int64_t>(k_blocks, 2);
  const SharedA shared = share_a ? SharedA(ring, m_tiles, a_panel_bytes, tn) : SharedA();
  // Threads that split only N claim column units dynamically when any thread may read any K block of A (in place,
  // prepacked, or shared with every K block resident): a core slowed by its neighbour (this 2-vCPU VM's second
  // core ran at 40-90% of the first's speed at times) then takes fewer units instead of holding the other at the
  // join. ~4 units per thread, of at least 2 tiles: every unit reads all of A, and 1-tile units (dX at N = 768)
  // made the NF4 backward 20-40% slower. Each C element still comes from one thread in K order: same bits.
  const int64_t unit_tiles = std::min(NC / nr, n_tiles / (4 * tn));
  const bool dynamic = tm == 1 && tn > 1 && unit_tiles >= 2 && (!a_packed || (share_a && ring == k_blocks));
  std::atomic<int64_t> next_unit{0};

  // An exception must not leave an OpenMP region: a thread that cannot get its scratch
  // skips its tiles and the failure is rethrown (as bad_alloc) after the region.
  bool failed = false;
#pragma omp parallel num_threads(tm * tn) if (tm * tn > 1)
  try {
    const int tid = omp_get_thread_num();
    const int ti = tid / tn, tj = tid % tn;
    const int64_t m0 = m_tiles * ti / tm * mr, m1 = std::min(M, m_tiles * (ti + 1) / tm * mr);
    const int64_t n0 = n_tiles * tj / tn * nr, n1 = std::min(N, n_tiles * (tj + 1) / tn * nr);
    auto* bbuf = b_pre ? nullptr
                       : static_cast<uint8_t*>(arena_get(
                             kSlotB, size_t(round_up(std::min(NC, dynamic ? unit_tiles * nr : n1 - n0), nr) * kcmax * esb)));
    // Full row tiles read A in place when the kernel can; only the edge tile (one panel) is packed then,
    // and with a shared A one private panel serves the rare panel another thread is packing (all of a K
    // block's panels when the ring may be full). A prepacked A needs none (one, never used).
    int64_t lda = 0;
    const bool a_in_place = uk.run_strided && direct_a(pack_a, m0, 0, lda, 0) != nullptr;
    const int64_t apan = a_pre || a_in_place || (share_a && ring == k_blocks) ? 1 : (m1 - m0 + mr - 1) / mr;
    auto* abuf = static_cast<uint8_t*>(arena_get(kSlotA, size_t(std::max<int64_t>(apan, 1)) * a_panel_bytes));
    const auto a_panel = [&](int64_t ir) { return abuf + (apan == 1 ? 0 : (ir - m0) / mr) * a_panel_bytes; };
    auto* ctile = static_cast<Acc*>(arena_get(kSlotC, size_t(mr * nr) * sizeof(Acc)));
    // Row panels in the order this thread visits them: with a shared A, threads start apart.
    const int64_t mpan = (m1 - m0 + mr - 1) / mr, mstart = share_a ? mpan * tj / tn : 0;

    // Columns [c0, c1) of the thread's rows over all of K.
    const auto columns = [&](int64_t c0, int64_t c1) {
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const int64_t kcp = round_up(kc, kg);
        const bool acc = accumulate || pc > 0;
        const bool last = pc + kc >= K;
        const PackGeom ga{mr, kg, kcp, mr * kcp};
        const auto pack_panel = [&](uint8_t* ap, int64_t ir, int rows) {
          if constexpr (!a_pre) pack_a_panel(pack_a, ap, ga, esa, ir, rows, pc, kc);
        };
        const float* adirect = a_in_place ? direct_a(pack_a, m0, pc, lda, 0) : nullptr;
        const int64_t kb = pc / KC;
        const bool shared_kb = share_a && shared.open(kb);
        if (!shared_kb && !a_pre)
          for (int64_t ir = m0; ir < m1; ir += mr) {
            const int rows = int(std::min<int64_t>(mr, m1 - ir));
            if (adirect && rows == mr) continue;
            pack_panel(a_panel(ir), ir, rows);
          }
        for (int64_t jc = c0; jc < c1; jc += NC) {
          const int64_t nc = std::min(NC, c1 - jc);
          const int64_t npan = (nc + nr - 1) / nr;
          const PackGeom gb{nr, kg, kcp, nr * kcp};
          if constexpr (!b_pre) {
            if (kcp != kc || nc % nr != 0) std::memset(bbuf, 0, size_t(npan * gb.panel_elems * esb));
            pack_b(bbuf, gb, pc, kc, jc, nc);
          }
          for (int64_t t = 0; t < mpan; ++t) {
            const int64_t ir = m0 + (mstart + t) % mpan * mr;
            const int rows = int(std::min<int64_t>(mr, m1 - ir));
            const uint8_t* abuf_p = nullptr;
            if constexpr (a_pre)
              abuf_p = pack_a.prepacked(ir, pc);
            else
              abuf_p = shared_kb ? shared.get(kb, (ir - m0) / mr, abuf, [&](uint8_t* ap) { pack_panel(ap, ir, rows); })
                                 : a_panel(ir);
            const float* arow = adirect && rows == mr ? adirect + (ir - m0) * lda : nullptr;
            // C tile (ir, j) [+]= A rows x B micro-panel bp.
            const auto tile = [&](const uint8_t* bp, void* c, int64_t ldc_, bool acc_) {
              if (arow)
                uk.run_strided(kc, arow, lda, bp, c, ldc_, acc_);
              else
                uk.run(kcp / kg, abuf_p, bp, c, ldc_, acc_);
            };
            for (int64_t p = 0; p < npan; ++p) {
              const int64_t j = jc + p * nr;
              const int cols = int(std::min<int64_t>(nr, jc + nc - j));
              const uint8_t* bp = nullptr;
              if constexpr (b_pre)
                bp = pack_b.prepacked_b(pc, j);
              else
                bp = bbuf + p * gb.panel_elems * esb;
              Acc* cp = C + ir * ldc + j;
              if (rows == mr && cols == nr) {
                tile(bp, cp, ldc, acc);
              } else {
                tile(bp, ctile, nr, false);
                for (int r = 0; r < rows; ++r)
                  for (int c = 0; c < cols; ++c)
                    cp[r * ldc + c] = acc ? Acc(cp[r * ldc + c] + ctile[r * nr + c]) : ctile[r * nr + c];
              }
              if (last) epilogue(cp, ldc, ir, j, rows, cols);
            }
          }
        }
        if (share_a) shared.finish(tj, kb);
      }
    };
    if (dynamic)
      for (int64_t u; (u = next_unit.fetch_add(1, std::memory_order_relaxed)) * unit_tiles < n_tiles;)
        columns(u * unit_tiles * nr, std::min(N, (u + 1) * unit_tiles * nr));
    else
      columns(n0, n1);
  } catch (...) {
#pragma omp atomic write
    failed = true;
  }
  if (failed) throw std::bad_alloc();
}

// A (M, K) packed once for many products with the same A (run_gemm with a PrepackedA): every micro-panel
// run_gemm would pack for kernel `uk`, K block after K block, `prepack_bytes` in all.
inline int64_t prepack_panel_bytes(const Ukernel& uk, int64_t K) {
  return uk.mr * round_up(std::min(kc_for(uk), K), uk.kgroup) * fmt_bytes(uk.a_fmt);
}
inline int64_t prepack_bytes(const Ukernel& uk, int64_t M, int64_t K) {
  return (M + uk.mr - 1) / uk.mr * ((K + kc_for(uk) - 1) / kc_for(uk)) * prepack_panel_bytes(uk, K);
}

struct PrepackedA {
  const uint8_t* base;
  int64_t m_tiles, panel_bytes, KC;
  int mr;
  const uint8_t* prepacked(int64_t i0, int64_t k0) const { return base + ((k0 / KC) * m_tiles + i0 / mr) * panel_bytes; }
};

template <class PackA>
PrepackedA prepack_a(const Ukernel& uk, int64_t M, int64_t K, const PackA& pack_a, uint8_t* out) {
  const int mr = uk.mr, kg = uk.kgroup;
  const int64_t KC = kc_for(uk), m_tiles = (M + mr - 1) / mr, panel_bytes = prepack_panel_bytes(uk, K);
  const int esa = fmt_bytes(uk.a_fmt);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc), kcp = round_up(kc, kg);
    const PackGeom ga{mr, kg, kcp, mr * kcp};
    for (int64_t ir = 0; ir < M; ir += mr) {
      const int rows = int(std::min<int64_t>(mr, M - ir));
      pack_a_panel(pack_a, out + ((pc / KC) * m_tiles + ir / mr) * panel_bytes, ga, esa, ir, rows, pc, kc);
    }
  }
  return {out, m_tiles, panel_bytes, KC, mr};
}

// B (K, N) packed once for many products with the same B (a frozen weight): every micro-panel run_gemm
// would pack for kernel `uk`, K block after K block, a block's column tiles together (so the driver's
// (K block, columns) blocks are contiguous). A micro-panel of kcp (rounded) k takes panel_bytes(kcp)
// bytes (fmt_bytes overstates packed fp16's). Such a B streams from memory into the first row tile's
// kernel calls; software prefetch of the next block into L2 measured no better (the fused head's
// working set already fills L2).
struct PrepackedB {
  const uint8_t* base;
  int64_t k_blocks, n_tiles, panel_bytes, KC;
  int nr;
  const uint8_t* prepacked_b(int64_t k0, int64_t j0) const {
    return base + ((k0 / KC) * n_tiles + j0 / nr) * panel_bytes;
  }
};

template <class PanelBytes>
PrepackedB prepacked_b_at(const Ukernel& uk, int64_t K, int64_t N, const PanelBytes& panel_bytes, const uint8_t* base) {
  const int64_t KC = kc_for(uk);
  return {base, (K + KC - 1) / KC, (N + uk.nr - 1) / uk.nr, panel_bytes(round_up(std::min(KC, K), uk.kgroup)), KC,
          uk.nr};
}

template <class PanelBytes>
int64_t prepack_b_bytes(const Ukernel& uk, int64_t K, int64_t N, const PanelBytes& panel_bytes) {
  const PrepackedB v = prepacked_b_at(uk, K, N, panel_bytes, nullptr);
  return v.k_blocks * v.n_tiles * v.panel_bytes;
}

template <class PackB, class PanelBytes>
PrepackedB prepack_b(const Ukernel& uk, int64_t K, int64_t N, const PackB& pack_b, const PanelBytes& panel_bytes,
                     uint8_t* out) {
  const PrepackedB v = prepacked_b_at(uk, K, N, panel_bytes, out);
  const int nr = uk.nr, kg = uk.kgroup;
  for (int64_t pc = 0; pc < K; pc += v.KC) {
    const int64_t kc = std::min(v.KC, K - pc), kcp = round_up(kc, kg);
    for (int64_t j = 0; j < N; j += nr) {
      const int64_t nc = std::min<int64_t>(nr, N - j);
      uint8_t* bp = const_cast<uint8_t*>(v.prepacked_b(pc, j));
      if (kcp != kc || nc != nr) std::memset(bp, 0, size_t(panel_bytes(kcp)));
      pack_b(bp, PackGeom{nr, kg, kcp, nr * kcp}, pc, kc, j, nc);
    }
  }
  return v;
}

}  // namespace nq::gemm
