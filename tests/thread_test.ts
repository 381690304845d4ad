import { Thread } from "../mod.ts";
import { testCommonBehaviour } from "./_common_behaviour.ts";

testCommonBehaviour(Thread);
