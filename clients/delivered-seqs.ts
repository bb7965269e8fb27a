/**
 * Which seqs of one room a client has already handed to its app, so that a
 * frame arriving twice (replayed after a resume, and also posted live) is
 * delivered once. Seqs a client sees have gaps (other members' private
 * frames), so "delivered" cannot be "at most the highest": each recent seq
 * is remembered, and only a window below the highest.
 */

/**
 * How far below the highest seq a frame may still arrive and be told apart
 * from a repeat. Frames overtake each other by a handful of places (on AWS,
 * concurrent Lambda invocations posting to one connection); a replay that
 * could be thousands long is put in order before it gets here.
 */
export const SEQ_WINDOW = 4096;

export class DeliveredSeqs {
  private readonly recent = new Set<number>();
  /** Every seq at or below this counts as delivered: the window's floor. */
  private floor = 0;
  private top = 0;

  /** The highest seq delivered or announced (welcome, resumed): what a resume asks to continue after. */
  get highest(): number {
    return this.top;
  }

  /** Raises the highest seq without delivering anything: the room's seq that a welcome or `resumed` reported. */
  advanceTo(seq: number): void {
    if (seq > this.top) this.top = seq;
  }

  has(seq: number): boolean {
    return seq <= this.floor || this.recent.has(seq);
  }

  /** Records `seq` as delivered; false (and nothing recorded) when it already was. */
  add(seq: number): boolean {
    if (this.has(seq)) return false;
    this.recent.add(seq);
    if (seq > this.top) this.top = seq;
    // Pruning in batches keeps the cost per frame constant: seqs are unique, so at most SEQ_WINDOW of them sit above the new floor.
    if (this.recent.size > 2 * SEQ_WINDOW) {
      this.floor = this.top - SEQ_WINDOW;
      for (const old of this.recent) if (old <= this.floor) this.recent.delete(old);
    }
    return true;
  }
}
