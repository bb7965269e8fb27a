/**
 * Which seqs of one room a client has already handed to its app, so that a
 * frame arriving twice (replayed after a resume, and also posted live) is
 * delivered once. Seqs a client sees have gaps (other members' private
 * frames), so "delivered" cannot be "at most the highest": each recent seq
 * is remembered, and only a window below the highest.
 *
 * A seq is remembered with the frame it numbered (its key: type, id or
 * sender, and timestamp, which a replay keeps), so that a server whose
 * numbering is not unique (two frames under one seq) loses no frame here: the
 * second is delivered, and the room's numbering is marked as not to be
 * trusted for ordering.
 */

/**
 * How far below the highest seq a frame may still arrive and be told apart
 * from a repeat. Frames overtake each other by a handful of places (on AWS,
 * concurrent Lambda invocations posting to one connection); a replay that
 * could be thousands long is put in order before it gets here.
 */
export const SEQ_WINDOW = 4096;

export type Delivery = 'new' | 'repeat' | 'conflict';

export class DeliveredSeqs {
  /** Seq → the keys of the frames delivered under it: one, unless the numbering failed. */
  private readonly recent = new Map<number, string[]>();
  /** Every seq at or below this counts as delivered: the window's floor. */
  private floor = 0;
  private top = 0;
  private unique = true;

  /** The highest seq delivered or announced (welcome, resumed): what a resume asks to continue after. */
  get highest(): number {
    return this.top;
  }

  /** False once two different frames came under one seq: then the seqs say nothing about order. */
  get consistent(): boolean {
    return this.unique;
  }

  /** Raises the highest seq without delivering anything: the room's seq that a welcome or `resumed` reported. */
  advanceTo(seq: number): void {
    if (seq > this.top) this.top = seq;
  }

  has(seq: number, key: string): boolean {
    return seq <= this.floor || (this.recent.get(seq)?.includes(key) ?? false);
  }

  /** Records the frame `key` under `seq`: new, a repeat (nothing recorded), or new but under a seq another frame has. */
  add(seq: number, key: string): Delivery {
    if (this.has(seq, key)) return 'repeat';
    const keys = this.recent.get(seq);
    if (keys) {
      keys.push(key);
      this.unique = false;
      return 'conflict';
    }
    this.recent.set(seq, [key]);
    if (seq > this.top) this.top = seq;
    // Pruning in batches keeps the cost per frame constant: seqs are unique, so at most SEQ_WINDOW of them sit above the new floor.
    if (this.recent.size > 2 * SEQ_WINDOW) {
      this.floor = this.top - SEQ_WINDOW;
      for (const old of this.recent.keys()) if (old <= this.floor) this.recent.delete(old);
    }
    return 'new';
  }
}
