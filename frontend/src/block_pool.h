// Per-thread free lists of fixed-size blocks for the objects every op call
// allocates and every step frees (trace nodes, variable data): a small
// training step makes and drops ~150 of them, past what malloc's per-thread
// cache holds (7 per size), so glibc's slow paths (_int_malloc, _int_free,
// consolidation) were ~5% of a digits-sized step. A block freed on another
// thread joins that thread's list; lists are freed at thread exit.
// (PoolAllocator is the std::allocate_shared allocator over them.)
#pragma once
#include <cstddef>
#include <new>
#include <type_traits>
#include <vector>

// Under AddressSanitizer every block comes from the heap, so a use after free is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define KILN_NO_BLOCK_POOL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_NO_BLOCK_POOL 1
#endif
#endif

namespace kiln::detail {

template <size_t Size>
class BlockPool {
 public:
  static void* allocate() {
#ifndef KILN_NO_BLOCK_POOL
    List& l = list();
    if (Block* b = l.head) {
      l.head = b->next;
      --l.count;
      return b;
    }
#endif
    return ::operator new(Size);
  }
  static void deallocate(void* ptr) {
#ifndef KILN_NO_BLOCK_POOL
    List& l = list();
    if (l.count < kMaxBlocks) {
      if (!l.owned) {
        l.owned = true;
        static thread_local Owner owner;  // frees the list at thread exit
        (void)owner;
      }
      auto* b = static_cast<Block*>(ptr);
      b->next = l.head;
      l.head = b;
      ++l.count;
      return;
    }
#endif
    ::operator delete(ptr);
  }

 private:
  struct Block {
    Block* next;
  };
  static_assert(Size >= sizeof(Block), "a block holds the free list's link");
  // At most this many free blocks kept per thread and size (~1 MB of nodes).
  static constexpr size_t kMaxBlocks = 4096;

  // Trivially destructible, so one thread-local access (no guard) per call, and
  // still readable after the Owner below has freed the blocks at thread exit.
  struct List {
    Block* head;
    size_t count;
    bool owned;  // an Owner will free the blocks
  };
  static List& list() {
    static thread_local List l{nullptr, 0, false};
    return l;
  }
  struct Owner {
    ~Owner() {
      List& l = list();
      while (Block* b = l.head) {
        l.head = b->next;
        ::operator delete(b);
      }
      l.count = kMaxBlocks;  // full: blocks freed later on this thread (by other thread-locals' destructors) go to the heap
    }
  };
};

// Blocks of up to 64 bytes, in size classes of 16 (a node's inputs: a few shared_ptrs).
inline void* allocate_small(size_t bytes) {
  switch ((bytes + 15) / 16) {
    case 1: return BlockPool<16>::allocate();
    case 2: return BlockPool<32>::allocate();
    case 3: return BlockPool<48>::allocate();
    case 4: return BlockPool<64>::allocate();
    default: return ::operator new(bytes);
  }
}
inline void deallocate_small(void* p, size_t bytes) {
  switch ((bytes + 15) / 16) {
    case 1: BlockPool<16>::deallocate(p); return;
    case 2: BlockPool<32>::deallocate(p); return;
    case 3: BlockPool<48>::deallocate(p); return;
    case 4: BlockPool<64>::deallocate(p); return;
    default: ::operator delete(p);
  }
}

// For std::allocate_shared (the object and its control block in one pooled
// block) and for small vectors (a node's inputs).
template <typename T>
struct PoolAllocator {
  using value_type = T;
  using is_always_equal = std::true_type;
  PoolAllocator() = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT: rebinding
  static_assert(alignof(T) <= 16, "blocks are aligned as ::operator new's");
  T* allocate(size_t n) {
    if (n == 1) return static_cast<T*>(BlockPool<sizeof(T)>::allocate());
    return static_cast<T*>(allocate_small(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
    if (n == 1) BlockPool<sizeof(T)>::deallocate(p);
    else deallocate_small(p, n * sizeof(T));
  }
  template <typename U>
  bool operator==(const PoolAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const PoolAllocator<U>&) const { return false; }
};

}  // namespace kiln::detail

namespace kiln::detail {

// Spare vector storage per thread and element type, for the scratch vectors and
// maps one walk of the trace uses (realize's NodeMaps and graph under
// construction: ~10 KB in ~11 blocks per step; large blocks also made malloc
// consolidate its small free chunks every step). take() a vector (empty, with a
// spare's capacity if there is one), give() it back when done (its elements are
// destroyed then: nothing it held stays alive).
template <typename T>
class VectorStash {
 public:
  static std::vector<T> take(size_t reserve = 0) {
    std::vector<T> v;
    State& s = state();
    if (s.holder && !s.holder->spare.empty()) {
      v = std::move(s.holder->spare.back());
      s.holder->spare.pop_back();
    }
    v.reserve(reserve);
    return v;
  }
  static void give(std::vector<T>& v) {
    State& s = state();
    if (s.gone || v.capacity() == 0 || v.capacity() * sizeof(T) > kMaxBytes) return;
    if (!s.holder) {
      static thread_local Holder holder;
      s.holder = &holder;
    }
    if (s.holder->spare.size() >= kMaxSpares) return;
    v.clear();
    s.holder->spare.push_back(std::move(v));
  }

 private:
  static constexpr size_t kMaxSpares = 8;
  static constexpr size_t kMaxBytes = size_t(1) << 20;
  struct Holder {
    std::vector<std::vector<T>> spare;
    ~Holder() {
      state().holder = nullptr;
      state().gone = true;  // vectors given back later on this thread are freed
    }
  };
  // Trivially destructible: readable while the thread's other thread-locals are destroyed.
  struct State {
    Holder* holder;
    bool gone;
  };
  static State& state() {
    static thread_local State s{nullptr, false};
    return s;
  }
};

}  // namespace kiln::detail
