// Waits until a Kafka broker answers a metadata request, for tests/kafka/kafka.sh.
//
// Run as a single-file source program (`java -cp <kafka libs> Probe.java BOOTSTRAP SECONDS`) so
// no build step is needed. Exits 0 once DescribeCluster returns at least one broker, 1 when the
// deadline passes first (printing the last error), 2 on bad arguments.

import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class Probe {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Probe BOOTSTRAP SECONDS");
            System.exit(2);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        String last = "no attempt made";
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    int brokers = admin.describeCluster().nodes().get(3, TimeUnit.SECONDS).size();
                    if (brokers > 0) {
                        System.exit(0);
                    }
                    last = "cluster has no brokers yet";
                } catch (Exception e) {
                    last = e.getCause() != null ? e.getCause().toString() : e.toString();
                }
                Thread.sleep(250);
            }
        }
        System.err.println("broker at " + args[0] + " did not answer: " + last);
        System.exit(1);
    }
}
