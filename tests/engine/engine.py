"""A small inference engine shaped like vLLM V1 where it matters to gsa-preload, and which knows
nothing of the library (everything the library does must come through LD_PRELOAD alone):

- KV cache: one tensor per layer through PyTorch (cudaMalloc), sized after a profiling forward
  pass from torch.cuda.mem_get_info() x gpu_util, as vLLM's worker does (so the library's
  memory honesty is exercised); block 0 is kept back as vLLM's null block.
- persistent int32 block table [max_num_seqs, max_blocks_per_seq], seq_lens, query_start_loc,
  input ids, positions and slot mapping (int64, derived from the block table), refreshed from
  host copies every step; active requests hold rows 0..n-1 in schedule order.
- scheduling: vLLM V1's continuous batching with chunked prefill: every step gives each
  running request its next tokens (decodes first: 1 token; prefills: a chunk) within a token
  budget, admits waiting requests while rows, budget and free blocks allow, and preempts the
  newest request (recompute) when a running one needs a block that is not there.
- attention through the backend's kernels (attention.py) for every step, prefill and decode in
  one launch per layer; greedy sampling on the GPU.
- CUDA graphs (vLLM's FULL mode): pure decode steps of a batch size seen for the first time run
  eagerly once (the warm-up), are captured, and replay from then on. Mixed steps run eagerly.
"""

import collections
import dataclasses
import time

import numpy as np
import torch

from attention import AttentionMeta, KVCaches, make as make_attention
from model import Model


def cdiv(a, b):
    return -(-a // b)


@dataclasses.dataclass
class Request:
    rid: int
    prompt: list
    max_new: int
    forced: list = None          # teacher forcing: tokens fed after the prompt, in order
    stop: tuple = ()
    on_logits: object = None     # callback(request, index_of_output, logits_row float32 [vocab])
    output: list = dataclasses.field(default_factory=list)     # fed-back tokens
    predicted: list = dataclasses.field(default_factory=list)  # argmax at each output position
    computed: int = 0            # tokens whose K/V are in the cache
    blocks: list = dataclasses.field(default_factory=list)
    t_arrival: float = 0.0
    t_first: float = 0.0
    done: bool = False

    def num_tokens(self):
        return len(self.prompt) + len(self.output)

    def token_slice(self, a, b):
        """(prompt + output)[a:b] without building the whole list (contexts reach 128K tokens)."""
        p = len(self.prompt)
        if b <= p:
            return self.prompt[a:b]
        if a >= p:
            return self.output[a - p:b - p]
        return self.prompt[a:] + self.output[:b - p]


class BlockPool:
    def __init__(self, num_blocks):
        self.free = collections.deque(range(1, num_blocks))  # 0: the null block

    def take(self, n):
        if n > len(self.free):
            return None
        return [self.free.popleft() for _ in range(n)]

    def give(self, blocks):
        self.free.extend(blocks)


class Engine:
    def __init__(self, cfg, weights, *, attention="vllm", release="0.33.0", block_size=16,
                 gpu_util=0.9, max_num_seqs=64, max_num_batched_tokens=8192, max_model_len=None,
                 max_kv_blocks=None, tp=1, group=None, device="cuda", log=print):
        self.cfg, self.device, self.log = cfg, device, log
        self.tp, self.group = tp, group
        self.block_size = block_size
        self.max_num_seqs = max_num_seqs
        self.max_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len or cfg.max_context
        self.attn = make_attention(attention, release, cfg.head, device)
        self.model = Model(cfg, weights, self.attn, tp=tp, group=group, device=device)
        self.dtype = weights["embed"].dtype
        self.kv_heads = cfg.kv_heads // tp
        self.max_blocks = cdiv(self.max_model_len, block_size)

        i32, i64 = dict(dtype=torch.int32), dict(dtype=torch.int64)
        pin = torch.cuda.is_available() and str(device).startswith("cuda")
        self.h_table = torch.zeros(max_num_seqs, self.max_blocks, pin_memory=pin, **i32)
        self.h_ids = torch.zeros(self.max_tokens, pin_memory=pin, **i64)
        self.h_pos = torch.zeros(self.max_tokens, pin_memory=pin, **i64)
        self.h_slots = torch.zeros(self.max_tokens, pin_memory=pin, **i64)
        self.h_qsl = torch.zeros(max_num_seqs + 1, pin_memory=pin, **i32)
        self.h_lens = torch.zeros(max_num_seqs, pin_memory=pin, **i32)
        self.h_lidx = torch.zeros(max_num_seqs, pin_memory=pin, **i64)
        self.block_table = torch.zeros(max_num_seqs, self.max_blocks, device=device, **i32)
        self.ids = torch.zeros(self.max_tokens, device=device, **i64)
        self.pos = torch.zeros(self.max_tokens, device=device, **i64)
        self.slots = torch.full((self.max_tokens,), -1, device=device, **i64)
        self.qsl = torch.zeros(max_num_seqs + 1, device=device, **i32)
        self.lens = torch.zeros(max_num_seqs, device=device, **i32)
        self.lidx = torch.zeros(max_num_seqs, device=device, **i64)
        self.n_table, self.n_ids, self.n_pos = self.h_table.numpy(), self.h_ids.numpy(), self.h_pos.numpy()
        self.n_slots, self.n_qsl = self.h_slots.numpy(), self.h_qsl.numpy()
        self.n_lens, self.n_lidx = self.h_lens.numpy(), self.h_lidx.numpy()
        self.row_owner = [None] * max_num_seqs
        self.row_blocks = [0] * max_num_seqs

        self.kv = self._profile_and_allocate(gpu_util, max_kv_blocks)
        self.pool = BlockPool(self.kv.num_blocks)
        self.waiting = collections.deque()
        self.running = []
        self.next_rid = 0
        self.use_graphs = False
        self.graphs = {}
        self.graph_pool = None
        self.stats = collections.Counter()
        self.host_s = 0.0

    # ------------------------------------------------------------------ memory
    def _profile_and_allocate(self, gpu_util, max_kv_blocks):
        cfg, bs = self.cfg, self.block_size
        per_block = KVCaches.bytes_per_block(cfg.layers, bs, self.kv_heads, cfg.head, self.dtype)
        on_gpu = str(self.device).startswith("cuda")
        if on_gpu:
            # Profiling pass: the largest step (a max_num_batched_tokens prefill) over a
            # throw-away cache just large enough, as vLLM's profile_run does.
            n = self.max_tokens
            tmp = KVCaches(cfg.layers, cdiv(n, bs) + 1, bs, self.kv_heads, cfg.head,
                           self.attn.layout, self.dtype, self.device)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base_alloc = torch.cuda.memory_allocated()
            ids = torch.zeros(n, dtype=torch.int64, device=self.device)
            pos = torch.arange(n, dtype=torch.int64, device=self.device)
            meta = AttentionMeta(
                query_start_loc=torch.tensor([0, n], dtype=torch.int32, device=self.device),
                seq_lens=torch.tensor([n], dtype=torch.int32, device=self.device),
                block_table=torch.arange(1, cdiv(n, bs) + 1, dtype=torch.int32,
                                         device=self.device).view(1, -1),
                slot_mapping=torch.arange(bs, bs + n, dtype=torch.int64, device=self.device),
                max_query_len=n, max_seq_len=n)
            self.model.forward(ids, pos, meta, tmp.layers,
                               torch.tensor([n - 1], device=self.device))
            torch.cuda.synchronize()
            peak_activation = torch.cuda.max_memory_allocated() - base_alloc
            del tmp, meta, ids, pos
            torch.cuda.empty_cache()
            free, total = torch.cuda.mem_get_info()
            used = total - free  # weights, CUDA context, workspaces, and whatever else is there
            budget = int(total * gpu_util) - used - peak_activation
            num_blocks = max(0, budget // per_block)
            if self.tp > 1:  # every rank must hold the same number of blocks
                t = torch.tensor([num_blocks], device=self.device)
                torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN, group=self.group)
                num_blocks = int(t.item())
            self.memory = dict(total=total, free_before_kv=free, peak_activation=peak_activation,
                               gpu_util=gpu_util, kv_budget=budget)
        else:
            num_blocks = max_kv_blocks or 1024
            self.memory = {}
        if max_kv_blocks:
            num_blocks = min(num_blocks, max_kv_blocks)
        if num_blocks < 2:
            raise SystemExit(f"no room for a KV cache ({self.memory})")
        kv = KVCaches(cfg.layers, num_blocks, bs, self.kv_heads, cfg.head, self.attn.layout,
                      self.dtype, self.device)
        self.memory.update(num_blocks=num_blocks, kv_bytes=num_blocks * per_block,
                           kv_tokens=(num_blocks - 1) * bs)
        self.log(f"engine: KV cache {num_blocks} blocks of {bs} tokens "
                 f"({num_blocks * per_block / 2**30:.2f} GiB, {(num_blocks - 1) * bs} tokens)")
        return kv

    # ------------------------------------------------------------------ requests
    def add(self, prompt, max_new, **kw):
        if len(prompt) + max_new > self.max_model_len:
            raise ValueError(f"request of {len(prompt)}+{max_new} tokens exceeds max_model_len "
                             f"{self.max_model_len}")
        r = Request(rid=self.next_rid, prompt=list(prompt), max_new=max_new, **kw)
        self.next_rid += 1
        r.t_arrival = time.perf_counter()
        self.waiting.append(r)
        return r

    def abort(self, r):
        if r in self.running:
            self.running.remove(r)
        if r in self.waiting:
            self.waiting.remove(r)
        self._forget_row(r)
        self.pool.give(r.blocks)
        r.blocks, r.done = [], True

    def abort_all(self):
        for r in list(self.running) + list(self.waiting):
            self.abort(r)

    def fork(self, r, n):
        """n running copies of a request that has finished its prefill: fresh blocks holding
        copies of its K/V (a measurement shortcut for building a batch of long contexts without
        prefilling each; the copies are distinct physical blocks)."""
        assert r.computed == r.num_tokens() - 1, "fork a request that is decoding"
        out = []
        for _ in range(n):
            blocks = self.pool.take(len(r.blocks))
            if blocks is None:
                raise RuntimeError("no free blocks to fork into")
            self.kv.copy_blocks(r.blocks, blocks)
            c = Request(rid=self.next_rid, prompt=list(r.prompt), max_new=r.max_new,
                        forced=r.forced, stop=r.stop, output=list(r.output),
                        predicted=list(r.predicted), computed=r.computed, blocks=blocks,
                        t_arrival=r.t_arrival, t_first=r.t_first)
            self.next_rid += 1
            self.running.append(c)
            out.append(c)
        return out

    def adopt_synthetic(self, prompt, max_new, seed=0):
        """A running request whose prompt's K/V are written directly (random normal values)
        instead of computed by a prefill: for decode-speed cells whose prefill would cost
        minutes. Its next-token input is the last prompt token; it has no TTFT."""
        c = len(prompt)
        blocks = self.pool.take(cdiv(c, self.block_size))
        if blocks is None:
            raise RuntimeError("no free blocks for a synthetic context")
        idx = torch.as_tensor(blocks, dtype=torch.int64, device=self.device)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        for k, v in self.kv.layers:
            for t in (k, v):
                t.index_copy_(0, idx, torch.randn((len(blocks),) + tuple(t.shape[1:]), generator=gen,
                                                  device=self.device, dtype=torch.float32).to(t.dtype))
        r = Request(rid=self.next_rid, prompt=list(prompt[:-1]), max_new=max_new,
                    output=[prompt[-1]], predicted=[prompt[-1]], computed=c - 1, blocks=blocks)
        self.next_rid += 1
        self.running.append(r)
        return r

    def has_work(self):
        return bool(self.running or self.waiting)

    # ------------------------------------------------------------------ scheduling
    def _grow(self, r, upto):
        need = cdiv(upto, self.block_size) - len(r.blocks)
        if need <= 0:
            return True
        b = self.pool.take(need)
        if b is None:
            return False
        r.blocks.extend(b)
        return True

    def _forget_row(self, r):
        for i, o in enumerate(self.row_owner):
            if o is r:
                self.row_owner[i] = None

    def _preempt(self, r):
        self._forget_row(r)
        self.running.remove(r)
        self.pool.give(r.blocks)
        r.blocks, r.computed = [], 0
        self.waiting.appendleft(r)
        self.stats["preempted"] += 1

    def _schedule(self):
        budget, batch = self.max_tokens, []
        # decodes first (vLLM orders the batch so), then running prefills
        order = sorted(self.running, key=lambda r: r.num_tokens() - r.computed > 1)
        for r in order:
            if r not in self.running:
                continue  # preempted by an earlier request of this step
            n = min(r.num_tokens() - r.computed, budget)
            if n <= 0:
                continue
            while not self._grow(r, r.computed + n):
                # vLLM's rule: preempt the newest running request, even one already
                # scheduled in this step (it leaves the batch and gives back its budget).
                victim = next((x for x in reversed(self.running) if x is not r), None)
                if victim is None:
                    raise RuntimeError("KV cache too small for a single request")
                for j, (b, m) in enumerate(batch):
                    if b is victim:
                        del batch[j]
                        budget += m
                        break
                self._preempt(victim)
            batch.append((r, n))
            budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            r = self.waiting[0]
            n = min(r.num_tokens() - r.computed, budget)
            if not self._grow(r, r.computed + n):
                break
            self.waiting.popleft()
            self.running.append(r)
            batch.append((r, n))
            budget -= n
        return batch

    # ------------------------------------------------------------------ one step
    def _prepare(self, batch):
        """Host copies of the step's inputs (numpy views of pinned buffers), then one
        asynchronous copy each into the persistent device buffers."""
        bs, t = self.block_size, 0
        table, ids, pos, slots = self.n_table, self.n_ids, self.n_pos, self.n_slots
        qsl, lens, lidx = self.n_qsl, self.n_lens, self.n_lidx
        qsl[0] = 0
        sample = []
        for row, (r, n) in enumerate(batch):
            if self.row_owner[row] is not r:
                self.row_owner[row], self.row_blocks[row] = r, 0
            k = self.row_blocks[row]
            if k < len(r.blocks):
                table[row, k:len(r.blocks)] = r.blocks[k:]
                self.row_blocks[row] = len(r.blocks)
            c = r.computed
            if n == 1:
                ids[t] = r.token_slice(c, c + 1)[0]
                pos[t] = c
                slots[t] = r.blocks[c // bs] * bs + c % bs
            else:
                ids[t:t + n] = r.token_slice(c, c + n)
                p = np.arange(c, c + n, dtype=np.int64)
                pos[t:t + n] = p
                slots[t:t + n] = np.asarray(r.blocks, dtype=np.int64)[p // bs] * bs + p % bs
            t += n
            qsl[row + 1] = t
            lens[row] = c + n
            if c + n == r.num_tokens():
                lidx[len(sample)] = t - 1
                sample.append(row)
        for row in range(len(batch), self.max_num_seqs):
            if self.row_owner[row] is None:
                break
            self.row_owner[row] = None
        nb = len(batch)
        self.block_table[:nb].copy_(self.h_table[:nb], non_blocking=True)
        self.ids[:t].copy_(self.h_ids[:t], non_blocking=True)
        self.pos[:t].copy_(self.h_pos[:t], non_blocking=True)
        self.slots[:t].copy_(self.h_slots[:t], non_blocking=True)
        self.qsl[:nb + 1].copy_(self.h_qsl[:nb + 1], non_blocking=True)
        self.lens[:nb].copy_(self.h_lens[:nb], non_blocking=True)
        self.lidx[:len(sample)].copy_(self.h_lidx[:len(sample)], non_blocking=True)
        return t, sample

    def _meta(self, nb, t, max_q, max_k):
        return AttentionMeta(query_start_loc=self.qsl[:nb + 1], seq_lens=self.lens[:nb],
                             block_table=self.block_table[:nb], slot_mapping=self.slots[:t],
                             max_query_len=max_q, max_seq_len=max_k)

    def _eager(self, nb, t, ns, max_q, max_k):
        meta = self._meta(nb, t, max_q, max_k)
        return self.model.forward(self.ids[:t], self.pos[:t], meta, self.kv.layers, self.lidx[:ns])

    def _graph(self, nb):
        """Logits of a pure decode step of nb requests through the batch size's CUDA graph;
        the first step of a size runs eagerly (warm-up) and then captures."""
        g = self.graphs.get(nb)
        if g is not None:
            g[0].replay()
            self.stats["graph_replays"] += 1
            return g[1]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            logits = self._eager(nb, nb, nb, 1, self.max_model_len)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        if self.graph_pool is None:
            self.graph_pool = torch.cuda.graph_pool_handle()
        with torch.cuda.graph(graph, pool=self.graph_pool):
            out = self._eager(nb, nb, nb, 1, self.max_model_len)
        self.graphs[nb] = (graph, out)
        self.stats["graph_captures"] += 1
        return logits

    def step(self):
        t_start = time.perf_counter()
        batch = self._schedule()
        if not batch:
            return 0
        t, sample = self._prepare(batch)
        nb = len(batch)
        max_q = max(n for _, n in batch)
        if self.use_graphs and max_q == 1 and str(self.device).startswith("cuda"):
            logits = self._graph(nb)
        else:
            max_k = max(r.computed + n for r, n in batch)
            logits = self._eager(nb, t, len(sample), max_q, max_k)
            self.stats["eager_steps"] += 1
        logits = logits[:len(sample)]
        self.host_s += time.perf_counter() - t_start  # host work until everything is queued
        top = logits.argmax(-1).tolist()  # the step's host synchronisation, as in vLLM
        now = time.perf_counter()
        for r, n in batch:
            r.computed += n
        for i, row in enumerate(sample):
            r = batch[row][0]
            if r.on_logits is not None:
                r.on_logits(r, len(r.output), logits[i])
            tok = top[i]
            r.predicted.append(tok)
            if r.forced is not None and len(r.output) < len(r.forced):
                tok = r.forced[len(r.output)]
            r.output.append(tok)
            if len(r.output) == 1:
                r.t_first = now
            if len(r.output) >= r.max_new or tok in r.stop:
                r.done = True
        for r, _ in batch:
            if r.done:
                self.running.remove(r)
                self.pool.give(r.blocks)
                r.blocks = []
        self.stats["steps"] += 1
        return t

    def run(self, deadline=None):
        while self.has_work():
            self.step()
            if deadline and time.time() > deadline:
                raise TimeoutError("engine run past its deadline")
