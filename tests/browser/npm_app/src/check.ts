// The package's declarations, as a TypeScript app uses them.
import { ParleyClient, ParleyError, type Negotiation } from "parley-client";
import { ParleyWidget, startProblem, type WidgetOptions } from "parley-client/widget";

export async function open(root: HTMLElement, token: () => Promise<string>): Promise<void> {
  const options: WidgetOptions = { url: "wss://chat.example.com/", token, listing: "42" };
  try {
    const widget: ParleyWidget = await ParleyWidget.start(root, options);
    widget.client.on("offer", (e) => console.log(e.offer satisfies Negotiation));
    widget.client.resumeNow();
  } catch (err) {
    if (err instanceof ParleyError) console.log(err.code, startProblem(err));
  }
  const client = await ParleyClient.connect("wss://chat.example.com/", token, { minBackoff: 500 });
  const reply = await client.post("listing:42", "Still available?");
  console.log(reply.seq, reply.duplicate);
}
