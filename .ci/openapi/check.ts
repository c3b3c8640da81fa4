// Type checks of the client openapi-typescript generates from
// engine/api/openapi.json (.ci/openapi-lint writes it to ./api.d.ts and runs
// tsc --noEmit). Each @ts-expect-error line must fail to compile: if the
// document loosens a type, tsc reports the unused directive.
import type { components } from "./api";

type S = components["schemas"];
type Decision = S["Decision"];
type Intervention = NonNullable<Decision["intervention"]>;
type Signposting = NonNullable<Decision["signposting"]>;

// The action is a union of the engine's actions.
export const actions: Decision["action"][] = ["deliver", "none", "safety"];
// @ts-expect-error not one of the actions
export const notAnAction: Decision["action"] = "not_an_action";

// The intervention has its fields, typed.
export const intervention: Intervention = { id: "breathing-478", title: "Breathe", body: "In for 4.", steps: ["In", "Out"], duration_s: 60 };
export const title: string = intervention.title;
export const seconds: number = intervention.duration_s;
export const steps: string[] = intervention.steps;
// @ts-expect-error an intervention has an id, title, body, steps and duration
export const emptyIntervention: Intervention = {};
// @ts-expect-error duration_s is a number
export const badDuration: Intervention = { id: "x", title: "t", body: "b", steps: [], duration_s: "60" };
// @ts-expect-error no such field
export const extraField: Intervention = { id: "x", title: "t", body: "b", steps: [], duration_s: 1, image: "x" };

// The signposting has its title, text and contacts.
export const signposting: Signposting = { title: "Help", text: "Call", contacts: [{ name: "Samaritans", phone: "116 123", url: "https://www.samaritans.org" }] };
export const contactName: string | undefined = signposting.contacts?.[0]?.name;
// @ts-expect-error signposting has a text
export const noText: Signposting = { title: "Help" };
// @ts-expect-error a contact is an object with a name
export const badContact: Signposting = { title: "Help", text: "Call", contacts: ["116 123"] };

// Events are a union discriminated on type.
type Event = S["Event"];
export const engagement: Event = { id: "e1", type: "engagement", time: "2026-11-16T14:31:00Z", data: { decision_id: "d1", status: "opened" } };
export const ema: Event = { id: "e2", type: "ema", time: "2026-11-16T14:31:00Z", data: { stress: 6, note: "busy" } };
// @ts-expect-error an engagement's data is {decision_id, status, rating?}
export const engagementWithEMA: Event = { id: "e3", type: "engagement", time: "2026-11-16T14:31:00Z", data: { stress: 6 } };
// @ts-expect-error not an event type
export const unknownType: Event = { id: "e4", type: "mood", time: "2026-11-16T14:31:00Z", data: { stress: 6 } };
// @ts-expect-error not an engagement status
export const badStatus: Event = { id: "e5", type: "engagement", time: "2026-11-16T14:31:00Z", data: { decision_id: "d1", status: "liked" } };

export function describe(ev: Event): string {
  switch (ev.type) {
    case "engagement":
      return ev.data.status; // narrowed by the discriminator
    case "assessment":
      return ev.data.instrument;
    default:
      return ev.type;
  }
}
