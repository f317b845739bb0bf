import { readFile } from "node:fs/promises";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { loadDefaultTokenizer, loadTokenizer } from "../../text/tokenizer.js";

export const tokenizeCommand: Command = {
  name: "tokenize",
  summary: "print the DeepSeek-V4 token ids of a text as a JSON array",
  usage: `Usage: dsv4 tokenize [--model DIR] (--text-file FILE | --text TEXT)

Tokenizes the UTF-8 text exactly as given: special-token strings in it (such as
<｜User｜>) become their ids and no BOS is added. Prints the ids as a JSON array.

Options:
  --model DIR        a model directory with tokenizer.json (default: the embedded V4 vocabulary)
  --text-file FILE   the text to tokenize
  --text TEXT        the text, inline
`,
  async run(argv) {
    const args = parseCommandArgs(tokenizeCommand, argv, {
      model: { type: "string" },
      "text-file": { type: "string" },
      text: { type: "string" },
    });
    const file = stringOption(tokenizeCommand, args, "text-file");
    const inline = args.values.text;
    if ((file === undefined) === (inline === undefined)) {
      throw new CliError("give exactly one of --text-file or --text (see `dsv4 tokenize --help`)", 2);
    }
    let text: string;
    if (file !== undefined) {
      try {
        text = await readFile(file, "utf8");
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else {
      text = String(inline);
    }
    const model = stringOption(tokenizeCommand, args, "model");
    let tokenizer;
    try {
      tokenizer = model === undefined ? loadDefaultTokenizer() : await loadTokenizer(model);
    } catch (err) {
      throw new CliError(`cannot load the tokenizer of ${model}: ${(err as Error).message}`);
    }
    process.stdout.write(JSON.stringify(tokenizer.encode(text)) + "\n");
  },
};
