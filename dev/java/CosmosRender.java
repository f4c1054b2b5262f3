// CosmosRender: renders and validates the fastdata Universe package the way DC/OS Cosmos does,
// with the libraries Cosmos uses (mustache.java and the java-json-tools JSON schema
// validator), so that a template or option Cosmos would refuse is refused here first.
//
// `dev/universe` is the normal way to call it (it fetches the classpath from Maven Central and
// compiles this file once); by hand, with Java's single-source launcher:
//
//   java -cp CP dev/java/CosmosRender.java render PACKAGE_DIR [--options FILE] [--resource FILE]
//   java -cp CP dev/java/CosmosRender.java defaults PACKAGE_DIR
//   java -cp CP dev/java/CosmosRender.java check-schema SCHEMA_FILE
//   java -cp CP dev/java/CosmosRender.java validate SCHEMA_FILE DOCUMENT_FILE
//
// render follows Cosmos' PackageDefinitionRenderer step by step:
//  1. the defaults of config.json (every "default", nested objects kept) deep-merged with the
//     user's options (the options win, objects merge key by key);
//  2. that merge validated against config.json (draft-04); every mismatch is printed and the
//     exit code is 1, as `dcos package install` would answer "Options JSON failed validation";
//  3. the mustache context: the merged options plus {"resource": resource.json};
//  4. every string JSON-escaped before substitution; inside arrays the quotes are kept, so a
//     list renders as a JSON array ({{service.placement_constraints}}); integral numbers that
//     fit an int render as ints, others as Java doubles; no HTML escaping;
//  5. the result must parse as a JSON object whose "labels" are all strings; Cosmos then adds
//     the labels it owns (DCOS_PACKAGE_NAME, _VERSION, _OPTIONS, _METADATA; this program leaves
//     out _SOURCE and _DEFINITION, which depend on the repository the package is served from).
// The parse is stricter than Cosmos' in one way: a duplicate key is an error (Cosmos keeps the
// last one silently, which hides template mistakes).
//
// check-schema validates a schema against the draft-04 meta-schema; validate checks a document
// against a schema. Exit codes: 0 valid/rendered, 1 invalid (one line per problem on stderr),
// 2 bad usage or unreadable files.

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.fge.jsonschema.core.report.LogLevel;
import com.github.fge.jsonschema.core.report.ProcessingMessage;
import com.github.fge.jsonschema.core.report.ProcessingReport;
import com.github.fge.jsonschema.main.JsonSchemaFactory;
import com.github.mustachejava.DefaultMustacheFactory;
import com.github.mustachejava.Mustache;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class CosmosRender {

    /** A refusal with the lines to print; exit code 1. */
    static final class Invalid extends Exception {
        final List<String> problems;

        Invalid(List<String> problems) {
            super(String.join("\n", problems));
            this.problems = problems;
        }

        Invalid(String problem) {
            this(List.of(problem));
        }
    }

    /** Bad usage or an unreadable input; exit code 2. */
    static final class Usage extends Exception {
        Usage(String message) {
            super(message);
        }
    }

    static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(SerializationFeature.INDENT_OUTPUT);

    /** Cosmos' factory: mustache.java with HTML escaping turned off (values pass raw). */
    static final DefaultMustacheFactory MUSTACHE = new DefaultMustacheFactory() {
        @Override
        public void encode(String value, Writer writer) {
            try {
                writer.write(value);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };

    public static void main(String[] args) {
        try {
            run(args);
            System.exit(0);
        } catch (Invalid e) {
            for (String problem : e.problems) {
                System.err.println(problem);
            }
            System.exit(1);
        } catch (Usage e) {
            System.err.println("CosmosRender: " + e.getMessage());
            System.exit(2);
        }
    }

    static void run(String[] args) throws Invalid, Usage {
        if (args.length == 0) {
            throw new Usage("usage: render PACKAGE_DIR [--options FILE] [--resource FILE] | defaults PACKAGE_DIR | check-schema SCHEMA | validate SCHEMA DOCUMENT");
        }
        switch (args[0]) {
            case "render" -> {
                if (args.length < 2) {
                    throw new Usage("render needs the package directory");
                }
                Path dir = Path.of(args[1]);
                Path options = null;
                Path resource = dir.resolve("resource.json");
                for (int i = 2; i < args.length; i += 2) {
                    if (i + 1 >= args.length) {
                        throw new Usage(args[i] + " needs a file");
                    }
                    switch (args[i]) {
                        case "--options" -> options = Path.of(args[i + 1]);
                        case "--resource" -> resource = Path.of(args[i + 1]);
                        default -> throw new Usage("unknown option " + args[i]);
                    }
                }
                print(render(dir, options, resource));
            }
            case "defaults" -> {
                if (args.length != 2) {
                    throw new Usage("defaults needs the package directory");
                }
                print(extractDefaults(readObject(Path.of(args[1]).resolve("config.json"))));
            }
            case "check-schema" -> {
                if (args.length != 2) {
                    throw new Usage("check-schema needs one schema file");
                }
                checkSchema(read(Path.of(args[1])), args[1]);
            }
            case "validate" -> {
                if (args.length != 3) {
                    throw new Usage("validate needs a schema file and a document file");
                }
                JsonNode schema = read(Path.of(args[1]));
                checkSchema(schema, args[1]);
                validate(schema, read(Path.of(args[2])), args[2]);
            }
            default -> throw new Usage("unknown command " + args[0]);
        }
    }

    static ObjectNode render(Path dir, Path optionsFile, Path resourceFile) throws Invalid, Usage {
        ObjectNode config = readObject(dir.resolve("config.json"));
        ObjectNode pkg = readObject(dir.resolve("package.json"));
        ObjectNode resource = readObject(resourceFile);
        ObjectNode userOptions = optionsFile == null
                ? JsonNodeFactory.instance.objectNode()
                : readObject(optionsFile);
        String template;
        try {
            template = Files.readString(dir.resolve("marathon.json.mustache"), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Usage("cannot read " + dir.resolve("marathon.json.mustache") + ": " + e);
        }

        // 1-2: defaults merged with the user's options, validated against config.json.
        ObjectNode merged = extractDefaults(config);
        deepMerge(merged, userOptions);
        checkSchema(config, "config.json");
        validate(config, merged, "the options (defaults merged with " + (optionsFile == null ? "no user options" : optionsFile) + ")");

        // 3: the context.
        ObjectNode context = merged.deepCopy();
        ObjectNode resourceWrapper = JsonNodeFactory.instance.objectNode();
        resourceWrapper.set("resource", resource);
        deepMerge(context, resourceWrapper);

        // 4: render.
        Mustache mustache = MUSTACHE.compile(new StringReader(template), ".marathon.v2AppMustacheTemplate");
        StringWriter out = new StringWriter();
        mustache.execute(out, toJava(context, false));
        String rendered = out.toString();

        // 5: a JSON object with string labels, then Cosmos' own labels.
        JsonNode app;
        try {
            app = JSON.readTree(rendered);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new Invalid(List.of("the rendered template is not JSON: " + e.getOriginalMessage(), "--- rendered text ---", rendered));
        }
        if (app == null || !app.isObject()) {
            throw new Invalid("the rendered template is not a JSON object (Cosmos: MarathonTemplateMustBeJsonObject)");
        }
        ObjectNode appObject = (ObjectNode) app;
        JsonNode labels = appObject.get("labels");
        ObjectNode labelObject;
        if (labels == null) {
            labelObject = appObject.putObject("labels");
        } else if (labels.isObject()) {
            labelObject = (ObjectNode) labels;
        } else {
            throw new Invalid(".labels of the rendered app is not an object");
        }
        List<String> problems = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = labelObject.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> label = it.next();
            if (!label.getValue().isTextual()) {
                problems.add("label " + label.getKey() + " is not a string (Marathon labels are a map of strings)");
            }
        }
        if (!problems.isEmpty()) {
            throw new Invalid(problems);
        }
        labelObject.put("DCOS_PACKAGE_NAME", pkg.path("name").asText());
        labelObject.put("DCOS_PACKAGE_VERSION", pkg.path("version").asText());
        labelObject.put("DCOS_PACKAGE_OPTIONS", base64(userOptions));
        ObjectNode metadata = pkg.deepCopy();
        if (resource.has("images")) {
            metadata.set("images", resource.get("images"));
        }
        labelObject.put("DCOS_PACKAGE_METADATA", base64(metadata));
        return appObject;
    }

    /** Cosmos' JsonSchema.extractDefaultsFromSchema: a property's default, or else the
     *  defaults of its own properties (an object, possibly empty); other properties are
     *  left out. */
    static ObjectNode extractDefaults(JsonNode schema) {
        ObjectNode defaults = JsonNodeFactory.instance.objectNode();
        JsonNode properties = schema.path("properties");
        for (Iterator<Map.Entry<String, JsonNode>> it = properties.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> property = it.next();
            JsonNode value = property.getValue();
            if (!value.isObject()) {
                continue;
            }
            if (value.has("default")) {
                defaults.set(property.getKey(), value.get("default").deepCopy());
            } else if (value.has("properties")) {
                defaults.set(property.getKey(), extractDefaults(value));
            }
        }
        return defaults;
    }

    /** circe's deepMerge: objects merge key by key, anything else is replaced. */
    static void deepMerge(ObjectNode target, ObjectNode fragment) {
        for (Iterator<Map.Entry<String, JsonNode>> it = fragment.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            JsonNode existing = target.get(field.getKey());
            if (existing != null && existing.isObject() && field.getValue().isObject()) {
                deepMerge((ObjectNode) existing, (ObjectNode) field.getValue());
            } else {
                target.set(field.getKey(), field.getValue().deepCopy());
            }
        }
    }

    /** Cosmos' jsonToJava: the mustache context as Java values. */
    static Object toJava(JsonNode json, boolean parentIsArray) {
        if (json.isNull()) {
            return null;
        }
        if (json.isBoolean()) {
            return json.booleanValue();
        }
        if (json.isNumber()) {
            // circe's `n.toInt.getOrElse(n.toDouble)`: a whole number in int range is an Int
            // (1.0 renders as 1), anything else a Double (3000000000 renders as 3.0E9).
            java.math.BigDecimal decimal = json.decimalValue();
            try {
                return decimal.intValueExact();
            } catch (ArithmeticException notAnInt) {
                return decimal.doubleValue();
            }
        }
        if (json.isTextual()) {
            String encoded = jsonString(json.textValue());
            return parentIsArray ? encoded : encoded.substring(1, encoded.length() - 1);
        }
        if (json.isArray()) {
            List<Object> list = new ArrayList<>();
            for (JsonNode item : json) {
                list.add(toJava(item, true));
            }
            return list;
        }
        Map<String, Object> map = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = json.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            map.put(field.getKey(), toJava(field.getValue(), false));
        }
        return map;
    }

    /** A JSON string literal as circe's noSpaces printer writes it: quote, backslash and
     *  control characters escaped, everything else (non-ASCII included) as is. */
    static String jsonString(String text) {
        StringBuilder out = new StringBuilder(text.length() + 2).append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    static void checkSchema(JsonNode schema, String name) throws Invalid {
        ProcessingReport report = JsonSchemaFactory.byDefault().getSyntaxValidator().validateSchema(schema);
        if (!report.isSuccess()) {
            throw new Invalid(messages(name + " is not a valid JSON schema", report));
        }
    }

    static void validate(JsonNode schema, JsonNode document, String name) throws Invalid {
        ProcessingReport report;
        try {
            report = JsonSchemaFactory.byDefault().getValidator().validate(schema, document, true);
        } catch (com.github.fge.jsonschema.core.exceptions.ProcessingException e) {
            throw new Invalid(name + ": the validator failed: " + e.getMessage());
        }
        if (!report.isSuccess()) {
            throw new Invalid(messages(name + " does not match the schema", report));
        }
    }

    /** One line per problem: where in the document, what is wrong, and for anyOf/oneOf the
     *  nested reasons, indented. */
    static List<String> messages(String heading, ProcessingReport report) {
        List<String> lines = new ArrayList<>();
        lines.add(heading + ":");
        for (ProcessingMessage message : report) {
            // Warnings (e.g. "unknown keyword media", the DC/OS UI's hint) are not problems.
            if (message.getLogLevel().compareTo(LogLevel.ERROR) >= 0) {
                describe(message.asJson(), "  ", lines);
            }
        }
        return lines;
    }

    static void describe(JsonNode message, String indent, List<String> lines) {
        String level = message.path("level").asText("error");
        if (!level.equals("error") && !level.equals("fatal")) {
            return;
        }
        String pointer = message.path("instance").path("pointer").asText("");
        String schemaPointer = message.path("schema").path("pointer").asText("");
        lines.add(indent + (pointer.isEmpty() ? "/" : pointer) + ": " + message.path("message").asText()
                + " (schema " + (schemaPointer.isEmpty() ? "/" : schemaPointer) + ")");
        JsonNode reports = message.path("reports");
        for (Iterator<Map.Entry<String, JsonNode>> it = reports.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> branch = it.next();
            for (JsonNode nested : branch.getValue()) {
                describe(nested, indent + "    ", lines);
            }
        }
    }

    static String base64(JsonNode json) throws Usage {
        try {
            byte[] bytes = new ObjectMapper().writeValueAsBytes(json);
            return Base64.getEncoder().encodeToString(bytes);
        } catch (IOException e) {
            throw new Usage("cannot encode a label: " + e);
        }
    }

    static JsonNode read(Path path) throws Usage, Invalid {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new Usage("cannot read " + path + ": " + e);
        }
        try {
            return JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new Invalid(path + " is not JSON: " + e.getOriginalMessage());
        }
    }

    static ObjectNode readObject(Path path) throws Usage, Invalid {
        JsonNode json = read(path);
        if (json == null || !json.isObject()) {
            throw new Invalid(path + " is not a JSON object");
        }
        return (ObjectNode) json;
    }

    static void print(JsonNode json) throws Usage {
        try {
            System.out.println(JSON.writeValueAsString(json));
        } catch (IOException e) {
            throw new Usage("cannot print JSON: " + e);
        }
    }
}
