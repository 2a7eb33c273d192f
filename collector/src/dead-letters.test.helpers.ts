// What a collector test checks after a run: how many messages are left on the
// span queue and parked on its dead-letter queue, and the first dead letter.
import type { ChannelModel, GetMessage } from 'amqplib';

export async function queueOutcome(
  connection: ChannelModel,
  queue: string,
): Promise<{ left: number; parked: number; letter: GetMessage | undefined }> {
  const channel = await connection.createChannel();
  try {
    const left = await channel.checkQueue(queue);
    const parked = await channel.checkQueue(`${queue}.dlq`);
    const letter = await channel.get(`${queue}.dlq`, { noAck: true });
    return { left: left.messageCount, parked: parked.messageCount, letter: letter === false ? undefined : letter };
  } finally {
    await channel.close();
  }
}
