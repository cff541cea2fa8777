package precis.bench;

import java.util.concurrent.atomic.AtomicInteger;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.config.Property;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.graphx.Graph;
import org.apache.spark.graphx.PartitionStrategy;
import org.apache.spark.graphx.lib.ConnectedComponents;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

import scala.Option;
import scala.Tuple2;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * GraphX's own connected components ({@code org.apache.spark.graphx.lib.ConnectedComponents},
 * Pregel min-label propagation) on a DataFrame of edges, for the components benchmark.
 *
 * <p>Python cannot build the {@code RDD[(Long, Long)]} GraphX needs through py4j, so this
 * class does it on the JVM: edges in, {@code (id, component)} rows out, each component
 * named by its minimum vertex id.
 */
public final class GraphXComponents {

    /** The logger Pregel reports each finished superstep on. */
    private static final String PREGEL_LOGGER = "org.apache.spark.graphx.Pregel";
    private static final String SUPERSTEP_MESSAGE = "Pregel finished iteration";

    private GraphXComponents() {
    }

    /**
     * What one run produced.
     *
     * @param labels {@code (id BIGINT, component BIGINT)}, persisted and materialized;
     *     the caller unpersists it
     * @param iterations Pregel supersteps run
     */
    public record Result(Dataset<Row> labels, int iterations) {
    }

    /**
     * Connected components of {@code edges} ({@code src}, {@code dst}: non-null BIGINT).
     *
     * <p>Duplicate edges are kept (no {@code uniqueEdges} merge); the vertices are the
     * edges' endpoints. Edges and vertices are stored MEMORY_AND_DISK. Pregel checkpoints
     * every {@code spark.graphx.pregel.checkpointInterval} supersteps into the
     * SparkContext's checkpoint directory; that setting is read from the SparkConf, so it
     * must be set when the session starts.
     */
    public static Result run(Dataset<Row> edges, int maxIterations) {
        SparkSession spark = edges.sparkSession();

        RDD<Tuple2<Object, Object>> pairs = edges.select("src", "dst").javaRDD()
            .map(row -> new Tuple2<Object, Object>(row.getLong(0), row.getLong(1)))
            .rdd();
        ClassTag<Object> intTag = ClassTag$.MODULE$.apply(int.class);
        Option<PartitionStrategy> keepDuplicates = Option.empty();
        Graph<Object, Object> graph = Graph.fromEdgeTuples(
            pairs, 1, keepDuplicates, StorageLevel.MEMORY_AND_DISK(), StorageLevel.MEMORY_AND_DISK(), intTag);

        SuperstepCounter counter = new SuperstepCounter();
        Graph<Object, Object> components;
        Dataset<Row> labels;
        try (Listening ignored = counter.listen()) {
            components = ConnectedComponents.run(graph, maxIterations, intTag, intTag);
            JavaRDD<Row> rows = components.vertices().toJavaRDD()
                .map(vertex -> RowFactory.create(vertex._1(), vertex._2()));
            StructType schema = new StructType()
                .add("id", DataTypes.LongType, false)
                .add("component", DataTypes.LongType, false);
            labels = spark.createDataFrame(rows, schema).persist(StorageLevel.MEMORY_AND_DISK());
            labels.count();
        }
        components.unpersist(false);
        graph.unpersist(false);
        return new Result(labels, counter.count());
    }

    /** Stops listening; throws nothing checked. */
    private interface Listening extends AutoCloseable {
        @Override
        void close();
    }

    /** Counts Pregel's "finished iteration" log lines while listening; prints nothing. */
    private static final class SuperstepCounter extends AbstractAppender {
        private final AtomicInteger supersteps = new AtomicInteger();

        SuperstepCounter() {
            super("precis-pregel-supersteps", null, null, true, Property.EMPTY_ARRAY);
        }

        @Override
        public void append(LogEvent event) {
            if (event.getMessage().getFormattedMessage().startsWith(SUPERSTEP_MESSAGE)) {
                supersteps.incrementAndGet();
            }
        }

        int count() {
            return supersteps.get();
        }

        /** Route Pregel's INFO lines here only (not to the console) until closed. */
        Listening listen() {
            LoggerContext context = LoggerContext.getContext(Graph.class.getClassLoader(), false, null);
            Configuration config = context.getConfiguration();
            LoggerConfig previous = config.getLoggers().get(PREGEL_LOGGER);
            LoggerConfig logger = new LoggerConfig(PREGEL_LOGGER, Level.INFO, false);
            logger.addAppender(this, Level.INFO, null);
            start();
            config.addLogger(PREGEL_LOGGER, logger);
            context.updateLoggers();
            return () -> {
                config.removeLogger(PREGEL_LOGGER);
                if (previous != null) {
                    config.addLogger(PREGEL_LOGGER, previous);
                }
                context.updateLoggers();
                stop();
            };
        }
    }
}
